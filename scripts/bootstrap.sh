#!/usr/bin/env bash
# Create .venv and install Pledge with its pinned dependencies. Idempotent and quiet when
# nothing changed (a stamp records the hash of the dependency files).
set -euo pipefail
cd "$(dirname "$0")/.."

# Python 3.11 or 3.12 (pyproject's requires-python): $PYTHON when set, else the first of
# python3, python3.12, python3.11 that is one of them.
supported() { "$1" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' 2>/dev/null; }
if [ -z "${PYTHON:-}" ]; then
    for candidate in python3 python3.12 python3.11; do
        if supported "$candidate"; then PYTHON=$candidate; break; fi
    done
fi
PYTHON=${PYTHON:-python3}
if ! supported "$PYTHON"; then
    echo "Pledge needs Python 3.11 or 3.12 (found: $("$PYTHON" --version 2>&1));" \
        "set PYTHON=/path/to/python3.12" >&2
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
