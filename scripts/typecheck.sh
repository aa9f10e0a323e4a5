#!/usr/bin/env bash
# mypy (strict) over the product as it is installed, over the tests and the benchmarks.
# setup.py installs the top-level actions/ and web/ as rrdalarm.actions and rrdalarm.web; mypy maps
# folders to modules by where they sit, so it checks a tree of links laid out as the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=.venv/typecheck
rm -rf "$tree"
mkdir -p "$tree/rrdalarm"
for entry in rrdalarm/*; do
  case "$(basename "$entry")" in __pycache__) continue ;; esac
  ln -s "../../../$entry" "$tree/rrdalarm/$(basename "$entry")"
done
ln -s ../../../actions "$tree/rrdalarm/actions"
ln -s ../../../web "$tree/rrdalarm/web"
exec .venv/bin/mypy "$@" "$tree/rrdalarm" tests bench
