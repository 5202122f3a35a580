#!/usr/bin/env bash
# verify.sh BINDIR — check the user units with `systemd-analyze verify
# --user`, as `make install` would install them: @BINDIR@ replaced by
# BINDIR, which must hold a built tapis-agent. Any complaint about the units,
# warnings included, fails the check.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bindir=$(cd "${1:-bin}" 2>/dev/null && pwd) || {
  echo "verify.sh: no directory ${1:-bin}; run make build" >&2
  exit 1
}
if ! command -v systemd-analyze >/dev/null; then
  echo "verify.sh: systemd-analyze not found; install the systemd package" >&2
  exit 1
fi
if [ ! -x "$bindir/tapis-agent" ]; then
  echo "verify.sh: $bindir/tapis-agent is not a built binary; run make build" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|@BINDIR@|$bindir|g" "$here/tapis-agent.service" >"$tmp/tapis-agent.service"
cp "$here/tapis-agent.socket" "$tmp/"
if grep -q '@[A-Z]*@' "$tmp"/*; then
  echo "verify.sh: placeholders left after substitution:" >&2
  grep -n '@[A-Z]*@' "$tmp"/* >&2
  exit 1
fi
# A user manager needs a runtime directory; CI runs as root without a login
# session, so give it a private one.
mkdir -m 0700 "$tmp/run"
if ! out=$(XDG_RUNTIME_DIR="$tmp/run" systemd-analyze verify --user \
  "$tmp/tapis-agent.socket" "$tmp/tapis-agent.service" 2>&1); then
  echo "$out" >&2
  exit 1
fi
# verify exits 0 on unknown keys and other warnings: fail on any line that
# names our units.
if grep -q 'tapis-agent' <<<"$out"; then
  echo "$out" >&2
  exit 1
fi
echo "systemd units OK"
