#!/usr/bin/env bash
# Downloads (once) Keycloak's Quarkus distribution from Maven Central and prints its home
# directory: the Keycloak server test/keycloak.test.ts starts to broker sign-ins to
# Gatehouse ("Keycloak brokers to Gatehouse", issue 13).
#
# The zip is checked against the SHA-256 pinned below (Maven Central publishes the same
# value beside the artifact), unpacked under the cache and never inside the repo.
# Keycloak 26 needs Java 21 or newer: the script also finds such a JDK (JAVA_HOME, else
# the newest under /usr/lib/jvm) and prints it on a second line.
#
# The unpacked server is built once here (`kc.sh build --db=dev-file`): Quarkus'
# augmentation takes minutes on a busy 2-core machine, and a pre-built server starts with
# `kc.sh start --optimized` (dev-file database, plain HTTP on loopback) without redoing it.
#
# Usage: scripts/ensure-keycloak.sh   -> line 1: Keycloak home, line 2: JAVA_HOME
# Env:   GATEHOUSE_CACHE   cache root (default ~/.cache/gatehouse)
#        KEYCLOAK_VERSION  with KEYCLOAK_SHA256 to try another release
# Idempotent: a cached, complete, built unpack (its .gatehouse-built marker) is reused as is.
set -euo pipefail

version="${KEYCLOAK_VERSION:-26.7.3}"
sha256="${KEYCLOAK_SHA256:-27a6535553c3cdcd083872ba40629efafb3475e3b758e0c6f691395561dd0f1f}"
cache_root="${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}"
home="$cache_root/keycloak-$version"
url="https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/$version/keycloak-quarkus-dist-$version.zip"

log() { echo "ensure-keycloak: $*" >&2; }
die() { echo "ensure-keycloak: ERROR: $*" >&2; exit 1; }

java_major() { "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1; }

find_java() {
  local candidate major best="" best_major=0
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/*; do
    [[ -n "$candidate" && -x "$candidate/bin/java" ]] || continue
    major=$(java_major "$candidate")
    if [[ -n "$major" && "$major" -ge 21 && "$major" -gt "$best_major" ]]; then best="$candidate"; best_major="$major"; fi
  done
  [[ -n "$best" ]] || die "Keycloak $version needs Java 21 or newer: none found in JAVA_HOME or /usr/lib/jvm"
  echo "$best"
}

java_home=$(find_java)

if [[ ! -f "$home/.gatehouse-built" ]]; then
  command -v curl >/dev/null 2>&1 || die "curl is required"
  command -v unzip >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 || die "unzip or python3 is required"
  mkdir -p "$cache_root"
  work=$(mktemp -d "$cache_root/keycloak-dl.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  log "downloading Keycloak $version from Maven Central (one time, ~170 MB)"
  curl -fsSL --retry 3 -o "$work/kc.zip" "$url" || die "download failed: $url"
  echo "$sha256  $work/kc.zip" | sha256sum -c --quiet - || die "checksum mismatch for $url"
  if command -v unzip >/dev/null 2>&1; then
    unzip -q "$work/kc.zip" -d "$work/unpacked"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$work/kc.zip" "$work/unpacked"
  fi
  chmod +x "$work/unpacked/keycloak-$version/bin/"*.sh
  log "building the server (dev-file database; one time, a few minutes)"
  JAVA_HOME="$java_home" "$work/unpacked/keycloak-$version/bin/kc.sh" build --db=dev-file >"$work/build.log" 2>&1 \
    || die "kc.sh build failed: $(tail -n 20 "$work/build.log")"
  echo "build --db=dev-file" > "$work/unpacked/keycloak-$version/.gatehouse-built"
  rm -rf "$home"
  mv "$work/unpacked/keycloak-$version" "$home"
  log "Keycloak $version unpacked and built into $home"
fi

echo "$home"
echo "$java_home"
