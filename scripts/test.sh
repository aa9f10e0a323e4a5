#!/usr/bin/env bash
# The whole test suite: lint, types, then pytest on every core.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's chromium drives the browser tests (Playwright cannot download its own here);
# the rrdcached tests start a real rrdcached; the store's tests start their own PostgreSQL cluster;
# the cluster's tests start their own redis-server.
scripts/setup.sh chromium fonts-dejavu-core rrdcached postgresql redis-server
.venv/bin/ruff check rrdalarm actions web tests bench
scripts/typecheck.sh
scripts/lint_layers.sh
.venv/bin/pytest -n auto -q "$@"
