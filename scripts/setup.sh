#!/usr/bin/env bash
# Installs what rrdalarm needs on Debian (as root) and a virtualenv in .venv.
# Idempotent: packages already present are not fetched again, and pip runs only
# when setup.py changed. Usage: scripts/setup.sh [extra-apt-package ...]
set -euo pipefail
cd "$(dirname "$0")/.."

need=(rrdtool librrd-dev pkg-config gcc python3 python3-dev python3-venv "$@")
missing=()
for pkg in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  python3 -m venv .venv
fi
stamp=".venv/.installed-$(cat setup.py pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing rrdalarm and its test tools into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
