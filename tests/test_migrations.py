"""The schema comes only from migrations: one head, a clean round trip, no drift."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from ra_app.extensions import db

from .conftest import make_app

EXPECTED_TABLES = {
    "sources",
    "samples",
    "transcript_revisions",
    "translation_revisions",
    "word_alignments",
    "segments",
    "job_runs",
    "users",
    "batches",
    "assignments",
    "review_decisions",
    "alembic_version",
}


def user_tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def enum_types(engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(sa.text("SELECT typname FROM pg_type WHERE typtype = 'e'")).scalars()
        )


def test_one_alembic_head(app):
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config()
        assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def roundtrip(url, data_root):
    app = make_app(url, data_root)
    with app.app_context():
        upgrade()
        assert user_tables(db.engine) >= EXPECTED_TABLES
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        downgrade(revision="base")
        assert user_tables(db.engine) <= {"alembic_version"}
        upgrade()
        assert user_tables(db.engine) >= EXPECTED_TABLES
        tables_after = user_tables(db.engine)
        engine = db.engine
        types = enum_types(engine) if engine.dialect.name == "postgresql" else None
        db.engine.dispose()
    return tables_after, types


def test_postgres_upgrade_downgrade_upgrade(empty_database, tmp_path):
    url = empty_database()
    tables, types = roundtrip(url, tmp_path)
    assert "processing_state" in types and "job_status" in types


def test_postgres_downgrade_leaves_no_types(empty_database, tmp_path):
    app = make_app(empty_database(), tmp_path)
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert enum_types(db.engine) == set()
        db.engine.dispose()


def test_sqlite_upgrade_downgrade_upgrade(tmp_path):
    roundtrip(f"sqlite:///{tmp_path / 'embedded.sqlite3'}", tmp_path)
