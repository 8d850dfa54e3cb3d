#!/usr/bin/env bash
# Checks for (and, as root, installs) the system programs the test suite starts itself:
# redis-server (also run as Sentinel) and redis-cli (redis-tools: creates the test Redis
# Cluster), slapd + ldap-utils (LDAP/AD tests), chromium + fonts-liberation (browser
# end-to-end) + fonts-ipafont-gothic (the Japanese login page's screenshot,
# test/i18n.test.ts), Apache httpd with mod_auth_openidc (a real relying party,
# test/relying-parties.test.ts; apache2-bin only, so no system service comes with it),
# unzip (scripts/ensure-keycloak.sh) and a Go toolchain (scripts/ensure-ferretdb.sh
# builds FerretDB with it).
#
# Tests run their OWN servers on loopback ports, so the system services a Debian
# install would start (slapd on :389, redis-server on :6379) are kept from starting
# (policy-rc.d answering 101 during the install) and stopped if they started anyway.
#
# Usage: bash scripts/ensure-system-deps.sh
#   prints one line per dependency (found / installed / MISSING);
#   exit 0 when everything is there, 1 when something is missing and could not be installed
#   (not root: it prints the exact apt-get command to run instead).
# Idempotent: a second run finds everything and changes nothing.
set -euo pipefail

GO_MIN_MINOR=22 # FerretDB 1.24's go.mod says `go 1.22`

log() { printf '%s\n' "$*"; }

has_command() { command -v "$1" >/dev/null 2>&1; }

# --- one check per dependency: exit 0 when present ------------------------------------

check_redis_server() { has_command redis-server || [[ -x /usr/bin/redis-server ]]; }
check_redis_tools() { has_command redis-cli || [[ -x /usr/bin/redis-cli ]]; }
check_slapd() { has_command slapd || [[ -x /usr/sbin/slapd ]]; }
check_ldap_utils() { has_command ldapadd && has_command ldapsearch; }
check_chromium() { [[ -x /usr/bin/chromium ]]; }
check_apache2_bin() { [[ -x /usr/sbin/apache2 ]]; }
check_mod_auth_openidc() { [[ -f /usr/lib/apache2/modules/mod_auth_openidc.so ]]; }
check_unzip() { has_command unzip; }
check_fonts_liberation() {
  if has_command dpkg-query; then
    dpkg-query -W -f='${Status}' fonts-liberation 2>/dev/null | grep -q 'ok installed'
  else
    [[ -d /usr/share/fonts/truetype/liberation ]]
  fi
}

check_fonts_ipafont_gothic() {
  if has_command dpkg-query; then
    dpkg-query -W -f='${Status}' fonts-ipafont-gothic 2>/dev/null | grep -q 'ok installed'
  else
    [[ -d /usr/share/fonts/opentype/ipafont-gothic ]]
  fi
}

where_is() {
  case "$1" in
    redis-server) command -v redis-server 2>/dev/null || echo /usr/bin/redis-server ;;
    redis-tools) command -v redis-cli 2>/dev/null || echo /usr/bin/redis-cli ;;
    slapd) command -v slapd 2>/dev/null || echo /usr/sbin/slapd ;;
    ldap-utils) command -v ldapsearch ;;
    chromium) echo /usr/bin/chromium ;;
    fonts-liberation) echo /usr/share/fonts/truetype/liberation ;;
    fonts-ipafont-gothic) echo /usr/share/fonts/opentype/ipafont-gothic ;;
    apache2-bin) echo /usr/sbin/apache2 ;;
    libapache2-mod-auth-openidc) echo /usr/lib/apache2/modules/mod_auth_openidc.so ;;
    unzip) command -v unzip ;;
  esac
}

# name -> check function; the name is also the Debian package that provides it.
DEPS=(redis-server redis-tools slapd ldap-utils chromium fonts-liberation fonts-ipafont-gothic apache2-bin libapache2-mod-auth-openidc unzip)
check_dep() {
  case "$1" in
    redis-server) check_redis_server ;;
    redis-tools) check_redis_tools ;;
    slapd) check_slapd ;;
    ldap-utils) check_ldap_utils ;;
    chromium) check_chromium ;;
    fonts-liberation) check_fonts_liberation ;;
    fonts-ipafont-gothic) check_fonts_ipafont_gothic ;;
    apache2-bin) check_apache2_bin ;;
    libapache2-mod-auth-openidc) check_mod_auth_openidc ;;
    unzip) check_unzip ;;
  esac
}

# --- keeping system services from starting during the install ------------------------

POLICY_RC=/usr/sbin/policy-rc.d
created_policy_rc=0

block_service_starts() {
  if [[ ! -e "$POLICY_RC" ]]; then
    printf '#!/bin/sh\n# ensure-system-deps.sh: no service starts during install\nexit 101\n' > "$POLICY_RC"
    chmod 0755 "$POLICY_RC"
    created_policy_rc=1
  fi
}

unblock_service_starts() {
  if [[ "$created_policy_rc" == 1 ]]; then
    rm -f "$POLICY_RC"
    created_policy_rc=0
  fi
}

# Stops the system instance of a service we just installed, if it is running anyway.
stop_system_service() {
  local service="$1"
  if has_command service && service "$service" status >/dev/null 2>&1; then
    service "$service" stop >/dev/null 2>&1 || true
    log "  stopped the system $service service (tests start their own)"
  fi
}

install_packages() {
  has_command apt-get || { log "apt-get not found: install $* by hand"; return 1; }
  block_service_starts
  trap unblock_service_starts EXIT
  log "installing: $* (apt-get, one time)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  unblock_service_starts
  trap - EXIT
  local package
  for package in "$@"; do
    case "$package" in
      slapd) stop_system_service slapd ;;
      redis-server) stop_system_service redis-server ;;
    esac
  done
}

# --- Go: not a Debian package here (bookworm's golang-go is 1.19, too old) -----------

check_go() {
  local go_bin version minor
  go_bin=$(command -v go 2>/dev/null) || {
    if [[ -x /usr/local/go/bin/go ]]; then
      log "go: MISSING from PATH (found /usr/local/go/bin/go: add /usr/local/go/bin to PATH)"
    else
      log "go: MISSING (need Go >= 1.$GO_MIN_MINOR on PATH to build FerretDB; Debian bookworm's golang-go 1.19 is too old)"
    fi
    return 1
  }
  version=$("$go_bin" env GOVERSION 2>/dev/null || true)
  minor=$(printf '%s' "$version" | sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p')
  if [[ -z "$minor" || "$minor" -lt "$GO_MIN_MINOR" ]]; then
    log "go: MISSING (found ${version:-unknown} at $go_bin; need Go >= 1.$GO_MIN_MINOR to build FerretDB)"
    return 1
  fi
  log "go: found ($version, $go_bin)"
}

# --- main ------------------------------------------------------------------------------

main() {
  local missing=() dep status=0
  for dep in "${DEPS[@]}"; do
    if check_dep "$dep"; then
      log "$dep: found ($(where_is "$dep"))"
    else
      missing+=("$dep")
    fi
  done

  if ((${#missing[@]} > 0)); then
    if [[ "$(id -u)" == 0 ]]; then
      install_packages "${missing[@]}" || status=1
      for dep in "${missing[@]}"; do
        if check_dep "$dep"; then
          log "$dep: installed ($(where_is "$dep"))"
        else
          log "$dep: MISSING (apt-get install did not provide it)"
          status=1
        fi
      done
    else
      for dep in "${missing[@]}"; do log "$dep: MISSING"; done
      log "not root: run as root:"
      log "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
      status=1
    fi
  fi

  check_go || status=1
  return "$status"
}

main "$@"
