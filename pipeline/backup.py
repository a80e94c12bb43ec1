"""Database backups: gzip JSONL of every table under `db_sync/` (BACKUP_DIR).

Backup (`flask backup [--full]`, task `pipeline.backup` on queue `io`)
    One folder per backup, ``<BACKUP_DIR>/<backup id>/``, with for every table
    ``<table>.jsonl.gz`` (its rows, one canonical JSON object a line, in primary-key order)
    and ``<table>.keys.jsonl.gz`` (the primary key of every row the table has, so a restore
    knows what was deleted since), plus ``manifest.json`` (kind, times, row counts, file
    checksums, the Alembic revision). On Postgres all tables are read in one REPEATABLE READ
    transaction: one consistent moment. The folder is written under a temporary name and
    renamed when complete; `checkpoint.json` then records the backup's time.

    The first backup, and every `--full` one, holds every row. The others are incremental:
    the rows whose `updated_at` is newer than the last checkpoint less
    BACKUP_OVERLAP_SECONDS. Every table has `updated_at`, and on Postgres the database sets
    it on every insert and update (a trigger; see the migration 9c4e1f7a2b3d), so any
    change — a gold mark, a role, a batch's status — is in the next incremental backup. The
    overlap catches rows stamped before the checkpoint by a transaction that committed
    after it; a row read twice is harmless, since restoring is idempotent. A backup run as
    a stage leaves out its own job run (it is running while the snapshot is taken).

Restoring them: pipeline/restore.py.

`table_checksums` gives, per table, the row count and a sha256 of its canonical rows in key
order: equal checksums mean equal tables; the tests compare a database with its restored copy.
"""

from __future__ import annotations

import base64
import decimal
import enum
import gzip
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from ra_app.core.clock import as_utc
from ra_app.core.files import sha256_file, write_text_atomically
from ra_app.core.media_store import is_local, media_storage
from ra_app.extensions import db

FORMAT = 1
BATCH = 500
CHECKPOINT = "checkpoint.json"
MANIFEST = "manifest.json"


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


def backup_dir() -> Path:
    config = current_app.config
    return Path(config.get("BACKUP_DIR") or Path(config["DATA_ROOT"]) / "db_sync").resolve()


# Tables made from the others (core/tallies.py): not backed up; a restore recounts them.
DERIVED = frozenset({"review_tallies"})


def tables() -> list[sa.Table]:
    return [t for t in db.metadata.sorted_tables if t.name not in DERIVED]


def key_column(table: sa.Table) -> sa.Column:
    columns = list(table.primary_key.columns)
    if len(columns) != 1:
        raise BackupError(f"table {table.name} needs a single-column primary key")
    return columns[0]


def stamp_column(table: sa.Table) -> sa.Column | None:
    """What last-write-wins and incremental backups go by."""
    return table.c.get("updated_at")


def own_run_left_out(table: sa.Table):
    """The condition that leaves this backup's own job run out of it, if it runs as one."""
    from .jobs import held_claim

    held = held_claim()
    if table.name != "job_runs" or held is None or held.stage != "backup":
        return None
    return table.c.id != held.run_id


def deferred_columns(table: sa.Table) -> list[sa.Column]:
    """Foreign keys written in a second pass: cycles (use_alter) and self-references."""
    return [
        fk.parent
        for fk in table.foreign_keys
        if fk.use_alter or fk.constraint.use_alter or fk.column.table is table
    ]


# ------------------------------------------------------------------------- row encoding


def encode(value):
    if (
        value is None
        or isinstance(value, bool | int | float | str)
        and not isinstance(value, enum.Enum)
    ):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value  # JSON documents are JSON already


def decode(column: sa.Column, value):
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, sa.Enum) and kind.enum_class is not None:
        return kind.enum_class(value)
    if isinstance(kind, sa.Uuid):
        return uuid.UUID(value) if kind.as_uuid else value
    if isinstance(kind, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(kind, sa.Date):
        return date.fromisoformat(value)
    if isinstance(kind, sa.LargeBinary):
        return base64.b64decode(value)
    return value


def row_line(table: sa.Table, row) -> str:
    """One row as canonical JSON: the same row always gives the same line."""
    mapping = row._mapping
    return canonical({c.name: encode(mapping[c]) for c in table.columns})


def canonical(encoded: dict) -> str:
    return json.dumps(encoded, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def rows_in_key_order(
    conn, table: sa.Table, since: datetime | None = None, leave_out=None
) -> Iterator:
    query = sa.select(table).order_by(key_column(table))
    stamp = stamp_column(table)
    if since is not None and stamp is not None:
        query = query.where(sa.or_(stamp > since, stamp.is_(None)))
    if leave_out is not None:
        query = query.where(leave_out)
    yield from conn.execution_options(yield_per=2000).execute(query)


def table_checksums(engine=None) -> dict[str, dict]:
    """Per table: row count and sha256 of its canonical rows in key order."""
    sums = {}
    with (engine or db.engine).connect() as conn:
        for table in tables():
            digest, count = hashlib.sha256(), 0
            for row in rows_in_key_order(conn, table):
                digest.update(row_line(table, row).encode())
                digest.update(b"\n")
                count += 1
            sums[table.name] = {"rows": count, "sha256": digest.hexdigest()}
    return sums


def schema_revision(conn) -> str | None:
    try:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        return ",".join(sorted(versions)) or None
    except sa.exc.DBAPIError:
        return None


# -------------------------------------------------------------------------------- backup


def read_checkpoint(folder: Path) -> dict | None:
    path = folder / CHECKPOINT
    return json.loads(path.read_text()) if path.is_file() else None


def snapshot_connection(engine):
    """A connection that sees one consistent moment: REPEATABLE READ on Postgres."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn


def backup(*, full: bool = False, dry_run: bool = False, out_dir: Path | None = None) -> dict:
    """Write one backup (see the module docstring); returns its manifest."""
    out = Path(out_dir or backup_dir())
    checkpoint = read_checkpoint(out)
    kind = "full" if full or checkpoint is None else "incremental"
    engine = db.engine
    with snapshot_connection(engine) as conn, conn.begin():
        if engine.dialect.name == "postgresql":
            taken_at = as_utc(conn.scalar(sa.select(sa.func.now())))  # the transaction's start
        else:
            taken_at = datetime.now(UTC)
        since = None
        if kind == "incremental":
            overlap = timedelta(seconds=current_app.config["BACKUP_OVERLAP_SECONDS"])
            since = datetime.fromisoformat(checkpoint["taken_at"]) - overlap
        backup_id = f"{taken_at:%Y%m%dT%H%M%S%f}Z-{kind}"
        manifest = {
            "format": FORMAT,
            "backup_id": backup_id,
            "kind": kind,
            "taken_at": taken_at.isoformat(),
            "since": since.isoformat() if since else None,
            "after": checkpoint["backup_id"] if kind == "incremental" else None,
            "schema_revision": schema_revision(conn),
            "dialect": engine.dialect.name,
            "tables": {},
        }
        if dry_run:
            for table in tables():
                query = sa.select(sa.func.count()).select_from(table)
                stamp = stamp_column(table)
                if since is not None and stamp is not None:
                    query = query.where(sa.or_(stamp > since, stamp.is_(None)))
                manifest["tables"][table.name] = {"rows": conn.scalar(query)}
            return manifest
        out.mkdir(parents=True, exist_ok=True)
        scratch = out / f".{backup_id}.part"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        try:
            for table in tables():
                manifest["tables"][table.name] = dump_table(conn, table, since, scratch)
            write_text_atomically(scratch / MANIFEST, json.dumps(manifest, indent=2) + "\n")
            os.replace(scratch, out / backup_id)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    if out_dir is None:
        copy_to_bucket(out / backup_id)  # before the checkpoint: a failed copy is redone
    write_text_atomically(
        out / CHECKPOINT,
        json.dumps({"backup_id": backup_id, "taken_at": taken_at.isoformat()}) + "\n",
    )
    return manifest


def copy_to_bucket(folder: Path) -> None:
    """With S3 media storage, each backup is also copied to `backups/<id>/` in the bucket
    (its manifest last), so the backups survive the host; download that folder to restore."""
    store = media_storage()
    if is_local(store):
        return
    for path in sorted(folder.iterdir(), key=lambda p: (p.name == MANIFEST, p.name)):
        store.put_file(path, f"backups/{folder.name}/{path.name}")


def dump_table(conn, table: sa.Table, since: datetime | None, folder: Path) -> dict:
    rows_file = folder / f"{table.name}.jsonl.gz"
    keys_file = folder / f"{table.name}.keys.jsonl.gz"
    leave_out = own_run_left_out(table)
    digest, count = hashlib.sha256(), 0
    with gzip.open(rows_file, "wt", encoding="utf-8", compresslevel=6) as fh:
        for row in rows_in_key_order(conn, table, since, leave_out):
            line = row_line(table, row)
            fh.write(line + "\n")
            digest.update(line.encode() + b"\n")
            count += 1
    key = key_column(table)
    keys = 0
    key_query = sa.select(key).order_by(key)
    if leave_out is not None:
        key_query = key_query.where(leave_out)
    with gzip.open(keys_file, "wt", encoding="utf-8", compresslevel=6) as fh:
        for (value,) in conn.execution_options(yield_per=10000).execute(key_query):
            fh.write(json.dumps(encode(value)) + "\n")
            keys += 1
    entry = {
        "rows": count,
        "keys": keys,
        "file": rows_file.name,
        "file_sha256": sha256_file(rows_file),
        "keys_file": keys_file.name,
    }
    if since is None:  # a full dump: the checksum of the whole table, as table_checksums
        entry["rows_sha256"] = digest.hexdigest()
    return entry
