#!/usr/bin/env bash
# The whole test suite on a fresh machine: virtual environment, packages, Chromium from
# Debian's packages when missing, a throwaway PostgreSQL cluster, then pytest on SQLite and
# PostgreSQL with the browser tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

if [ -z "${PLEDGE_CHROMIUM:-}" ]; then
    if ! command -v chromium >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "==> installing Chromium for the browser tests (apt-get install chromium)"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            echo "Chromium is missing: install Debian's chromium package (or set PLEDGE_CHROMIUM)" >&2
            exit 1
        fi
    fi
    export PLEDGE_CHROMIUM=$(command -v chromium)
fi

pgdir=$(mktemp -d "${TMPDIR:-/tmp}/pledge-pg.XXXXXX")
trap 'scripts/pg.sh stop "$pgdir"' EXIT
echo "==> starting a throwaway PostgreSQL cluster"
PLEDGE_TEST_PG_URL=$(scripts/pg.sh start "$pgdir")
export PLEDGE_TEST_PG_URL PLEDGE_TEST_REQUIRE_PG=1 PLEDGE_TEST_REQUIRE_BROWSER=1
export PLEDGE_TEST_PG_BINDIR=$(scripts/pg.sh bindir)

echo "==> lint: ruff and mypy"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy

echo "==> running the test suite (SQLite and PostgreSQL, browser tests in Chromium)"
.venv/bin/python -m pytest "$@"
