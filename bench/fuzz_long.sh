#!/usr/bin/env bash
# The long fuzz run: every fuzz target with RRDALARM_FUZZ_EXAMPLES cases (10,000 unless set), then per
# target the cases run, failing cases, tracebacks and exit-70s. RRDALARM_FUZZ_SEED replays a run.
set -uo pipefail
cd "$(dirname "$0")/.."
report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT
export RRDALARM_FUZZ_EXAMPLES="${RRDALARM_FUZZ_EXAMPLES:-10000}" RRDALARM_FUZZ_REPORT="$report"
.venv/bin/pytest -q -n "${WORKERS:-2}" -p no:cacheprovider "$@" tests/unit/test_fuzz_readers.py \
  tests/integration/test_fuzz_web.py tests/integration/test_fuzz_cli.py
status=$?
.venv/bin/python - "$report" <<'PY'
import json, sys
from collections import Counter
from pathlib import Path

total: dict[str, Counter[str]] = {}
for f in Path(sys.argv[1]).glob("tally-*.json"):
    for target, counts in json.loads(f.read_text()).items():
        total.setdefault(target, Counter()).update(counts)
print(f"{'target':40} {'cases':>8} {'failures':>9} {'tracebacks':>11} {'exit70':>7}")
for target, c in sorted(total.items()):
    print(f"{target:40} {c['cases']:>8} {c['failures']:>9} {c['tracebacks']:>11} {c['exit70']:>7}")
PY
exit $status
