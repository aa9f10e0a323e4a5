#!/usr/bin/env bash
# Two `rrdalarm serve` processes on one throwaway PostgreSQL database, longer and bigger than the
# test run: every alarm must be recorded and delivered once. Prints the figures (checks, events,
# firings, repeats, deliveries, requests received).
# Usage: bench/two_services.sh [SECONDS (360)] [FILES (500, two series each)]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh postgresql
RRDALARM_TWO_SERVE_SECONDS="${1:-360}" RRDALARM_TWO_SERVE_FILES="${2:-500}" \
  .venv/bin/pytest -q -s -p no:cacheprovider tests/e2e/test_two_services.py
