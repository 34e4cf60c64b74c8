#!/usr/bin/env bash
# Builds the Debian package tumblerd_VERSION_all.deb from this checkout with dpkg-deb alone.
# Usage: packaging/build-deb.sh [OUTDIR]   (default: the current folder); prints the .deb's path.
#
# What npm pack ships (prepack builds dist/) goes to /usr/lib/tumblerd with its production
# dependencies (pure JavaScript: the package is Architecture: all); the bins are symlinked into
# /usr/bin, where the unit finds them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
VERSION=$(node -p "require('$ROOT/package.json').version")
WORK=$(mktemp -d /tmp/tumblerd-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/stage
APP=$STAGE/usr/lib/tumblerd

(cd "$ROOT" && npm pack --silent --pack-destination "$WORK" >/dev/null 2>"$WORK/pack.log") ||
  { cat "$WORK/pack.log" >&2; exit 1; }
mkdir -p "$APP"
tar -xzf "$WORK"/tumblerd-"$VERSION".tgz -C "$APP" --strip-components=1
cp "$ROOT/package-lock.json" "$APP/"
(cd "$APP" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
rm "$APP/package-lock.json"

install -d "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/etc/tumblerd" \
  "$STAGE/usr/share/bash-completion/completions" "$STAGE/usr/share/doc/tumblerd"
for bin in tumblerd tumbler; do
  ln -s "../lib/tumblerd/dist/cli/$bin.js" "$STAGE/usr/bin/$bin"
  install -m 644 "$ROOT/completion/tumblerd.bash" "$STAGE/usr/share/bash-completion/completions/$bin"
done
install -m 644 "$ROOT/contrib/tumblerd.service" "$STAGE/lib/systemd/system/"
# it holds a door secret: readable by root only
install -m 600 "$ROOT/config/tumblerd.yaml" "$STAGE/etc/tumblerd/tumblerd.yaml"
sed -i 's#\$schema=\./tumblerd.schema.json#$schema=/usr/lib/tumblerd/config/tumblerd.schema.json#' "$STAGE/etc/tumblerd/tumblerd.yaml"
for page in "$ROOT"/man/*.[158]; do
  section=${page##*.}
  install -d "$STAGE/usr/share/man/man$section"
  gzip -9nc "$page" >"$STAGE/usr/share/man/man$section/$(basename "$page").gz"
done
install -m 644 "$ROOT/README.md" "$STAGE/usr/share/doc/tumblerd/"
install -d -m 700 "$STAGE/var/lib/tumblerd"

install -d "$STAGE/DEBIAN"
cat >"$STAGE/DEBIAN/control" <<EOF
Package: tumblerd
Version: $VERSION
Architecture: all
Maintainer: tumbler developers <tumbler@localhost>
Depends: nodejs (>= 20), iptables | nftables, procps
Recommends: ipset
Section: net
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
Description: secure port-knocking daemon
 tumblerd keeps services such as SSH firewalled until a client proves it knows
 a secret: classic knock sequences read from the firewall's log, or one
 Tumbler datagram (SHA-256 of the minute, the address and a secret). The
 client is tumbler(1).
EOF
echo /etc/tumblerd/tumblerd.yaml >"$STAGE/DEBIAN/conffiles"
cat >"$STAGE/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
# Not enabled or started: the shipped config has an example secret and must be edited first.
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  if [ -z "$2" ]; then
    echo "tumblerd: edit /etc/tumblerd/tumblerd.yaml, check it with 'tumblerd --check -c /etc/tumblerd/tumblerd.yaml', then: systemctl enable --now tumblerd"
  elif systemctl is-active --quiet tumblerd; then
    systemctl restart tumblerd || true
  fi
fi
EOF
cat >"$STAGE/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
# stopping closes the open doors; an upgrade restarts the daemon in postinst
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl disable --now tumblerd || true
fi
EOF
cat >"$STAGE/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  rm -rf /var/lib/tumblerd /var/log/tumblerd
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
EOF
chmod 755 "$STAGE/DEBIAN/postinst" "$STAGE/DEBIAN/prerm" "$STAGE/DEBIAN/postrm"
DEB=$OUT/tumblerd_${VERSION}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
