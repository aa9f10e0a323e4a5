#!/usr/bin/env bash
# Check the import layers (pyproject's [tool.importlinter]) on the installed package's shape:
# actions/ and web/ are installed as rrdalarm.actions and rrdalarm.web, so they are linted there.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/rrdalarm"
cp -r rrdalarm/. "$tree/rrdalarm/"
cp -r actions "$tree/rrdalarm/actions"
cp -r web "$tree/rrdalarm/web"
find "$tree" -name __pycache__ -prune -exec rm -rf {} +
# Run from the copy, without the editable install's finder, so that the copy is what is read.
here=$PWD
cd "$tree"
PYTHONPATH="$tree" "$here/.venv/bin/python" - "$here/pyproject.toml" <<'PY'
import sys

sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
from importlinter.cli import lint_imports_command

sys.argv = ["lint-imports", "--no-cache", sys.argv[1]]
lint_imports_command()
PY
