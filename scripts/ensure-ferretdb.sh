#!/usr/bin/env bash
# Builds (once) and prints the path of a FerretDB 1.x binary: the MongoDB-wire server
# the MongoDB store adapter is tested against (MongoDB itself cannot be installed here).
#
# Why a script and not `go install`: the Go module of FerretDB lacks the generated
# build/version/version.txt, so a plain `go install` builds a binary that panics at start.
# This script copies the module source out of the Go module cache, writes that file, and
# builds with the SQLite backend only.
#
# Usage: scripts/ensure-ferretdb.sh            -> prints the binary path on stdout
# Env:   GATEHOUSE_CACHE   cache root (default ~/.cache/gatehouse), never inside the repo
#        FERRETDB_VERSION  module version (default v1.24.0; the Go proxy refuses v1.24.1)
# Idempotent: a cached binary that answers `--version` is reused as is.
set -euo pipefail

version="${FERRETDB_VERSION:-v1.24.0}"
cache_root="${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}"
target_dir="$cache_root/ferretdb-$version"
binary="$target_dir/ferretdb"

log() { echo "ensure-ferretdb: $*" >&2; }
die() { echo "ensure-ferretdb: ERROR: $*" >&2; exit 1; }

binary_works() {
  [[ -x "$binary" ]] && "$binary" --version >/dev/null 2>&1
}

if binary_works; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "the Go toolchain is required to build FerretDB (go not on PATH)"

log "building FerretDB $version into $target_dir (one time, takes a few minutes)"
started=$(date +%s)

mkdir -p "$cache_root"
cd "$cache_root" # outside any Go module, and never inside the repo
module_json=$(go mod download -json "github.com/FerretDB/FerretDB@$version") \
  || die "go mod download of github.com/FerretDB/FerretDB@$version failed: $module_json"
module_dir=$(printf '%s\n' "$module_json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n 1)
[[ -n "$module_dir" && -d "$module_dir" ]] || die "could not find the module directory in: $module_json"

work_dir=$(mktemp -d "$cache_root/ferretdb-src.XXXXXX")
trap 'rm -rf "$work_dir"' EXIT

cp -R "$module_dir/." "$work_dir/"
chmod -R u+w "$work_dir"
printf '%s\n' "$version" > "$work_dir/build/version/version.txt"

mkdir -p "$target_dir"
# SQLite backend only; PostgreSQL is not needed for tests. The Go toolchain here is newer
# than the module's, which is fine: GOTOOLCHAIN=local forbids downloading another one.
(cd "$work_dir" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
  go build -trimpath -tags ferretdb_no_postgresql -o "$binary.tmp" ./cmd/ferretdb) \
  || die "go build of FerretDB $version failed"
mv "$binary.tmp" "$binary"

binary_works || die "the built binary $binary does not run: $("$binary" --version 2>&1 | tail -n 5)"
log "built FerretDB $version in $(( $(date +%s) - started ))s"
echo "$binary"
