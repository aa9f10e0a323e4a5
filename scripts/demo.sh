#!/usr/bin/env bash
# Runs the rrdalarm service on a freshly generated demo RRD tree (embedded SQLite
# in .demo/data) until Ctrl-C or SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/rrdalarm demo .demo
# A demo admin with a random password, printed once (kept across runs: the database stays).
if out=$(.venv/bin/rrdalarm --settings .demo/rrdalarm.toml user add admin --role admin --random 2>/dev/null); then
  admin="user admin, password ${out##*password: }"
else
  admin="user admin, password printed by an earlier run (new one: .venv/bin/rrdalarm --settings .demo/rrdalarm.toml user passwd admin --random)"
fi
listen=$(sed -n 's/^listen = "\(.*\)"$/\1/p' .demo/rrdalarm.toml)
cat <<INFO

rrdalarm demo
  alarms now:  http://${listen}/  (log in: ${admin})
  web report:  http://${listen}/report
  thresholds:  http://${listen}/thresholds  (edit with autocomplete, preview, save; history under Events)
  or directly: http://${listen}/report?token=$(cat .demo/data/api_token)
  API token:   $(cat .demo/data/api_token)
  cron-style:  curl -H "Authorization: Bearer \$(cat .demo/data/api_token)" "http://${listen}/start?noHTML=true"
  history:     .venv/bin/rrdalarm --settings .demo/rrdalarm.toml history
  Ctrl-C stops the service.

INFO
exec .venv/bin/rrdalarm --settings .demo/rrdalarm.toml serve
