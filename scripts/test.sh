#!/usr/bin/env bash
# The whole test suite: sets up, checks the services the tests talk to, lints, runs pytest.
# Tests use Postgres on 127.0.0.1:5432 (user postgres) and Redis on 127.0.0.1:6379; override
# with TEST_DATABASE_ADMIN_URL and TEST_REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements-dev.txt

.venv/bin/python - <<'PY'
import os, sys
import psycopg2, redis
pg = os.environ.get("TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
rd = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
try:
    psycopg2.connect(pg.replace("postgresql+psycopg2://", "postgresql://")).close()
    redis.Redis.from_url(rd).ping()
except Exception as error:
    sys.exit(f"The tests need Postgres and Redis running: {error}")
PY

.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
