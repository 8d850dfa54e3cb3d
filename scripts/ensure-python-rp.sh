#!/usr/bin/env bash
# Creates (once) the virtualenv of the Python relying party test/authlib.test.ts drives
# (Authlib and requests, versions pinned in test/fixtures/authlib/requirements.txt, from
# PyPI) and prints its python path. Cached outside the repo; rebuilt when the pins change.
#
# Usage: scripts/ensure-python-rp.sh   -> line 1: the venv's python
# Env:   GATEHOUSE_CACHE   cache root (default ~/.cache/gatehouse)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
requirements="$root/test/fixtures/authlib/requirements.txt"
cache_root="${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}"
pins=$(sha256sum "$requirements" | cut -c1-16)
venv="$cache_root/python-rp-$pins"

die() { echo "ensure-python-rp: ERROR: $*" >&2; exit 1; }

if [[ ! -x "$venv/bin/python" || ! -f "$venv/.gatehouse-complete" ]]; then
  command -v python3 >/dev/null || die "python3 is needed for the Authlib relying-party test"
  python3 -m venv --help >/dev/null 2>&1 || die "python3 venv module missing (apt-get install python3-venv)"
  rm -rf "$venv"
  mkdir -p "$cache_root"
  echo "ensure-python-rp: creating $venv (Authlib from PyPI)" >&2
  python3 -m venv "$venv" || die "could not create the virtualenv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2 || die "pip install failed (PyPI unreachable?)"
  "$venv/bin/python" -c 'import authlib, requests' || die "Authlib did not import"
  touch "$venv/.gatehouse-complete"
fi
echo "$venv/bin/python"
