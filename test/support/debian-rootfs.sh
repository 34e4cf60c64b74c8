#!/usr/bin/env bash
# Builds (once) the Debian 12 root filesystem that the systemd-nspawn test boots and that the
# podman test imports as its node:20-bookworm-slim base image. One tree for both: bootstrapping is
# the slow part of the real-system tests. Usage: debian-rootfs.sh [DIR]; prints DIR when ready.
#
# node comes from this machine's own nodejs package, so the rootfs has Node 20 as a Debian
# package and tumblerd's .deb installs against it with its dependency satisfied.
set -euo pipefail
DIR=${1:-/var/cache/tumbler-test/bookworm}
# nodejs (NodeSource's) depends on python3; the unit's ExecReload needs kill (procps)
PACKAGES=systemd,systemd-sysv,dbus,iptables,ipset,nftables,iproute2,tini,ca-certificates,python3,procps
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9
if [ -e "$DIR/.complete" ]; then
  echo "$DIR"
  exit 0
fi
MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p; s/^deb \(http[^ ]*\/debian\) bookworm main.*/\1/p' \
  /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
TMP="$DIR.tmp"
rm -rf "$TMP"
start=$(date +%s)
# mmdebstrap: debootstrap's result, with one apt download and dpkg's unsafe-io (faster)
mmdebstrap --variant=minbase --include="$PACKAGES" bookworm "$TMP" "$MIRROR" >"$DIR.log" 2>&1 ||
  { tail -n 20 "$DIR.log" >&2; exit 1; }
# This machine's nodejs package, as installed (dpkg-repack would take minutes to rebuild its
# .deb): its files, with npm as it is now, and its dpkg record, so that dpkg inside knows it.
{ dpkg-query -L nodejs | while read -r f; do [ -f "$f" ] || [ -L "$f" ] && echo "$f"; done
  echo /usr/lib/node_modules/npm; } | tar -C / -c -T - 2>/dev/null | tar -C "$TMP" -x
dpkg-query -s nodejs >>"$TMP/var/lib/dpkg/status"
echo >>"$TMP/var/lib/dpkg/status"
cp -a /var/lib/dpkg/info/nodejs.* "$TMP/var/lib/dpkg/info/"
# a machine-id of its own per boot: nspawn fills an empty one
: >"$TMP/etc/machine-id"
chroot "$TMP" apt-get clean
rm -rf "$TMP"/var/lib/apt/lists/*
touch "$TMP/.complete"
mv "$TMP" "$DIR"
echo "built $DIR in $(($(date +%s) - start))s" >&2
echo "$DIR"
