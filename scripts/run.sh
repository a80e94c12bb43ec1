#!/usr/bin/env bash
# The embedded product on a laptop: SQLite under instance/, tasks in-process, a demo batch.
# Sets up, migrates, creates the demo accounts (printed below) and serves 127.0.0.1:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements.txt
export FLASK_APP=ra_app
.venv/bin/flask db upgrade
echo "Demo accounts:"
.venv/bin/flask demo
echo "Open http://127.0.0.1:${PORT:-5000} and sign in as the demo reviewer to start reviewing."
exec .venv/bin/flask run --host 127.0.0.1 --port "${PORT:-5000}"
