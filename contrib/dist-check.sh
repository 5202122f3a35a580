#!/usr/bin/env bash
# dist-check.sh — check that make dist is reproducible: clone HEAD twice,
# into different paths, with different umasks and file times, run
# make dist in each, and compare the SHA256SUMS (and so every archive and
# the wheel). Uncommitted changes are not in the clones: commit first.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.0.1
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
if ! git diff --quiet HEAD; then
  echo "dist-check.sh: note: uncommitted changes are not checked; the clones hold HEAD" >&2
fi
git clone -q --no-local . "$tmp/first"
(umask 0002 && git clone -q --no-local . "$tmp/second/clone")
# Another checkout time for every file of the second clone.
find "$tmp/second/clone" -path '*/.git' -prune -o -exec touch -d '2001-02-03 04:05:06' {} +
for c in "$tmp/first" "$tmp/second/clone"; do
  echo "dist-check.sh: make dist in $c"
  make -C "$c" --no-print-directory dist VERSION=$version >"$c.log" 2>&1 || { cat "$c.log" >&2; exit 1; }
done
if ! cmp "$tmp/first/dist/SHA256SUMS" "$tmp/second/clone/dist/SHA256SUMS"; then
  diff "$tmp/first/dist/SHA256SUMS" "$tmp/second/clone/dist/SHA256SUMS" >&2 || true
  echo "dist-check.sh: the two clones' archives differ" >&2
  exit 1
fi
n=$(wc -l <"$tmp/first/dist/SHA256SUMS")
if [ "$n" -lt 6 ]; then # five archives and the wheel
  echo "dist-check.sh: SHA256SUMS lists $n files; want five archives and the wheel:" >&2
  cat "$tmp/first/dist/SHA256SUMS" >&2
  exit 1
fi
cat "$tmp/first/dist/SHA256SUMS"
echo "dist-check.sh: two clones, identical SHA256SUMS"
