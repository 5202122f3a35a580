#!/usr/bin/env bash
# dist.sh --version X.Y.Z --out DIR [--wheel-dir DIR] OS/ARCH... — write
# DIR/tapis-agent_X.Y.Z_OS_ARCH.tar.gz for each platform, and
# DIR/SHA256SUMS for them (and the Python wheel, when --wheel-dir holds one
# of this version).
#
# Each archive holds one directory, tapis-agent_X.Y.Z_OS_ARCH/: install.sh,
# README.md, LICENSE, bin/ (static tapis-agent and tapis-token),
# contrib/completion/, the systemd user units (Linux) or the LaunchAgent
# (macOS), and python/ with the wheel.
#
# The archives are reproducible: built from the same commit, in any clone,
# at any time, they are byte for byte the same. The binaries carry no paths
# (-trimpath), no build id and no VCS stamp, only the version and commit;
# every file gets the commit's time (SOURCE_DATE_EPOCH), owner 0, a fixed
# mode, and its place in name order; gzip records no name or time.
set -euo pipefail
cd "$(dirname "$0")/.."

version= out= wheeldir=
platforms=()
while [ $# -gt 0 ]; do
  case $1 in
  --version) version=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  --wheel-dir) wheeldir=$2; shift 2 ;;
  */*) platforms+=("$1"); shift ;;
  *) echo "dist.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$version" ] || [ -z "$out" ] || [ ${#platforms[@]} -eq 0 ]; then
  echo "usage: dist.sh --version X.Y.Z --out DIR [--wheel-dir DIR] OS/ARCH..." >&2
  exit 2
fi

commit=$(git rev-parse HEAD)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
# Everything that could change the binaries is set here, not inherited.
export CGO_ENABLED=0 GOFLAGS= GOAMD64=v1 GOARM64=v8.0 GOEXPERIMENT=
umask 022

wheel=
if [ -n "$wheeldir" ]; then
  # The wheel's version is the PEP 440 form of the release: the same here.
  for w in "$wheeldir"/tapis_agent-"$version"-*.whl; do
    [ -f "$w" ] && wheel=$w
  done
  if [ -z "$wheel" ]; then
    echo "dist.sh: no tapis_agent-$version wheel in $wheeldir; run make python VERSION=$version" >&2
    exit 1
  fi
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

archives=()
for p in "${platforms[@]}"; do
  os=${p%/*} arch=${p#*/}
  name=tapis-agent_${version}_${os}_${arch}
  root=$stage/$name
  mkdir -p "$root/bin" "$root/contrib/completion"
  GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=$version -X main.commit=$commit" \
    -o "$root/bin/" ./cmd/tapis-agent ./cmd/tapis-token
  cp contrib/install.sh "$root/install.sh"
  cp README.md LICENSE "$root/"
  cp contrib/completion/tapis.bash "$root/contrib/completion/"
  case $os in
  linux)
    mkdir -p "$root/contrib/systemd"
    cp contrib/systemd/tapis-agent.service contrib/systemd/tapis-agent.socket "$root/contrib/systemd/"
    ;;
  darwin)
    mkdir -p "$root/contrib/launchd"
    cp contrib/launchd/com.github.tapis-agent.tapis-agent.plist "$root/contrib/launchd/"
    ;;
  esac
  if [ -n "$wheel" ]; then
    mkdir -p "$root/python"
    cp "$wheel" "$root/python/"
  fi
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -type f -exec chmod 0644 {} +
  chmod 0755 "$root/install.sh" "$root"/bin/*
  tar --sort=name --format=ustar --mtime="@$SOURCE_DATE_EPOCH" \
    --owner=0 --group=0 --numeric-owner -C "$stage" -cf - "$name" |
    gzip -9 -n >"$out/$name.tar.gz"
  archives+=("$name.tar.gz")
  echo "dist.sh: $out/$name.tar.gz"
done

sums=("${archives[@]}")
if [ -n "$wheel" ]; then
  if [ "$(cd "$(dirname "$wheel")" && pwd)" != "$out" ]; then
    cp "$wheel" "$out/"
  fi
  sums+=("$(basename "$wheel")")
fi
(cd "$out" && sha256sum "${sums[@]}" >SHA256SUMS)
echo "dist.sh: $out/SHA256SUMS"
