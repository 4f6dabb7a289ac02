#!/usr/bin/env bash
# Create .venv and install Pledge with its pinned dependencies. Idempotent and quiet when
# nothing changed (a stamp records the hash of the dependency files).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "Pledge needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "==> creating virtual environment in .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.pledge-deps
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c 'import pledge' 2>/dev/null; then
    echo "==> installing Pledge and its pinned dependencies"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
    echo "$want" > "$stamp"
fi
