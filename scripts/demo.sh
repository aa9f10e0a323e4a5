#!/usr/bin/env bash
# Runs rrdalarm on a freshly generated demo RRD tree (embedded SQLite in .demo/data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/rrdalarm demo .demo
status=0
.venv/bin/rrdalarm --settings .demo/rrdalarm.toml check || status=$?
case $status in
  0) echo "Nothing is firing." ;;
  1) echo "Exit status 1: some series are firing (see ALARM FIRED above; log lines in .demo/data/log/)." ;;
  3) echo "Exit status 3: some series could not be read." ;;
  *) exit "$status" ;;
esac
echo "History: .venv/bin/rrdalarm --settings .demo/rrdalarm.toml history"
