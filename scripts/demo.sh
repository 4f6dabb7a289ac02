#!/usr/bin/env bash
# Set up and start Pledge with demo data on the embedded SQLite default (PLEDGE_HOME=./var).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/pledge demo "$@"
