#!/bin/sh
# The image's entrypoint, under tini. The image's iptables is nft; on a host whose firewall is
# iptables-legacy, rules tumblerd adds through nft would sit beside the host's legacy ones and a
# legacy DROP still drops: every door would open and let nothing through, without an error.
# So the backend is checked against the host's live rules before tumblerd starts.
# IPTABLES_BACKEND: auto (the default: refuse a mismatch), legacy, or nft.
set -eu

rules() { # number of rules a backend's save command prints, IPv4 and IPv6
  { "iptables-$1-save" 2>/dev/null; "ip6tables-$1-save" 2>/dev/null; } | grep -c '^-A' || true
}

case "${IPTABLES_BACKEND:-auto}" in
  legacy)
    update-alternatives --quiet --set iptables /usr/sbin/iptables-legacy
    update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-legacy
    ;;
  nft) ;;
  auto)
    legacy=$(rules legacy)
    if [ "$legacy" -gt 0 ]; then
      nft=$(rules nft)
      if [ "$nft" -eq 0 ]; then
        echo "tumblerd: this host's firewall is iptables-legacy ($legacy rules) but the image's iptables is nft: doors would open in rules the legacy firewall never consults. Run the container with -e IPTABLES_BACKEND=legacy (or move the host to iptables-nft)." >&2
      else
        echo "tumblerd: this host has both iptables-legacy ($legacy rules) and iptables-nft ($nft rules) in use: set -e IPTABLES_BACKEND=legacy or nft to say which firewall tumblerd must change." >&2
      fi
      exit 78
    fi
    ;;
  *)
    echo "tumblerd: IPTABLES_BACKEND must be auto, legacy or nft, not \"$IPTABLES_BACKEND\"" >&2
    exit 78
    ;;
esac
exec tumblerd "$@"
