#!/usr/bin/env bash
# The long crash test (issue #16): check, deliver and serve SIGKILLed at random, 1,000 times or more in all.
# Prints the kills of each process kind, the events compared, the deliveries, duplicates and integrity.
#   bash bench/crash_long.sh [KILLS]           on SQLite (default 1000 kills)
#   RRDALARM_CRASH_PG=1 bash bench/crash_long.sh   on PostgreSQL too (a throwaway cluster, tests/pg.py)
#   bash bench/crash_long.sh 1000 -k postgresql   (extra arguments go to pytest)
#   RRDALARM_CRASH_SEED=N replays a seed; RRDALARM_CRASH_BUDGET=S bounds the killed run (default 3600 s)
set -euo pipefail
cd "$(dirname "$0")/.."
export RRDALARM_KILLS="${1:-1000}"
.venv/bin/pytest -q -s -p no:cacheprovider tests/e2e/test_crash.py "${@:2}" 2>&1 | grep -E "^crash:|passed|failed|Error"
