"""Database backup and restore: gzip JSONL of every table under `db_sync/` (BACKUP_DIR).

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

Restore (`flask restore [--force] [--dry-run]`)
    Applies the newest full backup and every incremental one after it, in one transaction,
    table by table in foreign-key order, keeping the backup's `updated_at` stamps. Last
    write wins by `updated_at`: a row is written when the database has no row with its key,
    or an older one; a newer row in the database is kept (`--force`: the backup always
    wins). Two copies stamped the same instant are resolved by their content (the greater
    canonical line wins), so two databases that exchange backups end up the same. A job
    run that was running when the backup was taken comes back `expired`: no worker of this
    database holds its claim. Rows absent from the newest backup's key
    lists were deleted at the source: they are deleted here too, unless the database's copy
    is newer than that backup. Foreign keys that form cycles (and self-references) are
    written in a second pass, so rows can arrive in any order. Postgres sequences are moved
    past the restored ids. `--dry-run` runs all of it and rolls back, reporting the counts.
    The backup's Alembic revision must match the database's (run `flask db upgrade` first).

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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ra_app.core.files import sha256_file, write_text_atomically
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


def tables() -> list[sa.Table]:
    return list(db.metadata.sorted_tables)


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


def utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; they are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
        return utc(value).isoformat()
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
    return json.dumps(
        {c.name: encode(mapping[c]) for c in table.columns},
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )


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
            taken_at = utc(conn.scalar(sa.select(sa.func.now())))  # the transaction's start
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
    write_text_atomically(
        out / CHECKPOINT,
        json.dumps({"backup_id": backup_id, "taken_at": taken_at.isoformat()}) + "\n",
    )
    return manifest


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


# ------------------------------------------------------------------------------- restore


@dataclass
class TableReport:
    inserted: int = 0
    updated: int = 0
    kept: int = 0  # the database's copy was newer (or the same)
    skipped: int = 0  # in an older backup, deleted at the source since
    deleted: int = 0


@dataclass
class RestoreReport:
    backups: list[str]
    dry_run: bool
    force: bool
    tables: dict[str, TableReport] = field(default_factory=dict)

    def totals(self) -> TableReport:
        total = TableReport()
        for report in self.tables.values():
            for name in vars(total):
                setattr(total, name, getattr(total, name) + getattr(report, name))
        return total


def backups_in(folder: Path) -> list[dict]:
    found = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_dir() and not path.name.startswith(".") and (path / MANIFEST).is_file():
                manifest = json.loads((path / MANIFEST).read_text())
                manifest["path"] = str(path)
                found.append(manifest)
    return found


def restore_chain(folder: Path) -> list[dict]:
    """The newest full backup and every later incremental one, oldest first."""
    found = backups_in(folder)
    fulls = [i for i, m in enumerate(found) if m["kind"] == "full"]
    if not fulls:
        raise BackupError(f"no full backup in {folder}: run `flask backup --full` first")
    return found[fulls[-1] :]


def read_lines(path: Path) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def upsert(conn, table: sa.Table, rows: list[dict]) -> None:
    key = key_column(table)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(rows)
    update = {c.name: statement.excluded[c.name] for c in table.columns if c is not key}
    conn.execute(statement.on_conflict_do_update(index_elements=[key], set_=update))


def existing_rows(conn, table: sa.Table, keys: list) -> dict:
    """The database's copies of these keys: key -> (stamp, canonical line)."""
    key, stamp = key_column(table), stamp_column(table)
    found = conn.execute(sa.select(table).where(key.in_(keys))).all()
    return {
        encode(row._mapping[key]): (
            utc(row._mapping[stamp]) if stamp is not None and row._mapping[stamp] else None,
            row_line(table, row),
        )
        for row in found
    }


def backup_wins(backup_stamp, backup_line: str, database_stamp, database_line: str) -> bool:
    """Last write wins; the same instant on both sides: the greater line (any fixed order
    would do; this one is the same on every machine)."""
    if backup_stamp is None or database_stamp is None:
        if backup_stamp is None and database_stamp is None:
            return backup_line > database_line
        return backup_stamp is not None
    backup_stamp = utc(backup_stamp)
    if backup_stamp != database_stamp:
        return backup_stamp > database_stamp
    return backup_line > database_line


def canonical(raw: dict) -> str:
    return json.dumps(raw, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def restored_as(table: sa.Table, raw: dict) -> dict:
    """A job run running at backup time comes back expired: nobody here holds its claim."""
    if table.name == "job_runs" and raw.get("status") == "running":
        return {
            **raw,
            "status": "expired",
            "lease_expires_at": None,
            "error": "restored from a backup taken while it ran",
        }
    return raw


def restore(*, force: bool = False, dry_run: bool = False, src_dir: Path | None = None):
    """Restore the backups in `src_dir` (see the module docstring); returns a RestoreReport."""
    folder = Path(src_dir or backup_dir())
    chain = restore_chain(folder)
    newest = chain[-1]
    newest_at = datetime.fromisoformat(newest["taken_at"])
    report = RestoreReport([m["backup_id"] for m in chain], dry_run, force)
    engine = db.engine
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            if engine.dialect.name == "postgresql":
                # The stamps are the backup's: the updated_at trigger leaves them alone.
                conn.execute(sa.text("SET LOCAL app.restoring = 'on'"))
            target = schema_revision(conn)
            if not force and newest.get("schema_revision") and target != newest["schema_revision"]:
                raise BackupError(
                    f"the backup is of schema revision {newest['schema_revision']}, this "
                    f"database is at {target}: run `flask db upgrade` (or use --force)"
                )
            for table in tables():
                report.tables[table.name] = TableReport()
            for table in reversed(tables()):
                keys = newest_keys(newest, table)
                delete_stale(conn, table, keys, newest_at, force, report.tables[table.name])
            later: dict[str, list[dict]] = {}
            for table in tables():
                keys = newest_keys(newest, table)
                later[table.name] = restore_table(
                    conn, table, chain, keys, force, report.tables[table.name]
                )
            for table in tables():
                write_deferred(conn, table, later[table.name])
            if engine.dialect.name == "postgresql":
                move_sequences(conn)
        except BaseException:
            transaction.rollback()
            raise
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    return report


def newest_keys(newest: dict, table: sa.Table) -> set | None:
    entry = newest["tables"].get(table.name)
    if entry is None:
        return None  # a table the backup does not know: leave its rows alone
    path = Path(newest["path"]) / entry["keys_file"]
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return {json.loads(line) for line in fh if line.strip()}


def delete_stale(conn, table, keys, newest_at, force, report: TableReport) -> None:
    """Rows the source no longer has, unless this database changed them since."""
    if keys is None:
        return
    key, stamp = key_column(table), stamp_column(table)
    columns = [key, stamp] if stamp is not None else [key]
    stale = [
        row[0]
        for row in conn.execute(sa.select(*columns))
        if encode(row[0]) not in keys
        and (force or stamp is None or row[1] is None or utc(row[1]) <= newest_at)
    ]
    for start in range(0, len(stale), BATCH):
        conn.execute(sa.delete(table).where(key.in_(stale[start : start + BATCH])))
    report.deleted += len(stale)


def restore_table(conn, table, chain, keys, force, report: TableReport) -> list[dict]:
    """Write the table's rows from each backup of the chain; returns the deferred foreign
    keys to set once every table is in."""
    key = key_column(table)
    stamp = stamp_column(table)
    deferred = deferred_columns(table)
    later = []
    for manifest in chain:
        entry = manifest["tables"].get(table.name)
        if entry is None or not entry["rows"]:
            continue
        batch: list[dict] = []

        def flush(batch=batch):
            if not batch:
                return
            have = existing_rows(conn, table, [decode(key, r[key.name]) for r in batch])
            rows = []
            for raw in batch:
                known = raw[key.name] in have
                backup_stamp = decode(stamp, raw[stamp.name]) if stamp is not None else None
                if known and not force:
                    database_stamp, database_line = have[raw[key.name]]
                    if not backup_wins(backup_stamp, canonical(raw), database_stamp, database_line):
                        report.kept += 1
                        continue
                raw = restored_as(table, raw)
                row = {c.name: decode(c, raw.get(c.name)) for c in table.columns}
                links = {c.name: row[c.name] for c in deferred}
                if any(v is not None for v in links.values()):
                    # The second pass is an UPDATE: keep `updated_at` as restored.
                    kept = {c.name: row[c.name] for c in table.columns if c.onupdate is not None}
                    later.append({"_key": row[key.name], **links, **kept})
                    for name in links:
                        row[name] = None
                rows.append(row)
                if known:
                    report.updated += 1
                else:
                    report.inserted += 1
            if rows:
                upsert(conn, table, rows)
            batch.clear()

        for raw in read_lines(Path(manifest["path"]) / entry["file"]):
            if keys is not None and raw[key.name] not in keys:
                report.skipped += 1  # deleted at the source since this backup
                continue
            batch.append(raw)
            if len(batch) >= BATCH:
                flush()
        flush()
    return later


def write_deferred(conn, table: sa.Table, rows: list[dict]) -> None:
    if not rows:
        return
    key = key_column(table)
    columns = deferred_columns(table) + [c for c in table.columns if c.onupdate is not None]
    values = {c.name: sa.bindparam(f"_v_{c.name}") for c in columns}
    statement = table.update().where(key == sa.bindparam("_key")).values(values)
    params = [{"_key": row["_key"], **{f"_v_{name}": row[name] for name in values}} for row in rows]
    for start in range(0, len(params), BATCH):
        conn.execute(statement, params[start : start + BATCH])


def move_sequences(conn) -> None:
    """Next ids after the restored ones (Postgres serial columns)."""
    for table in tables():
        key = key_column(table)
        if not isinstance(key.type, sa.Integer):
            continue
        sequence = conn.scalar(
            sa.select(sa.func.pg_get_serial_sequence(f'"{table.name}"', key.name))
        )
        if sequence:
            top = conn.scalar(sa.select(sa.func.max(key))) or 0
            conn.execute(sa.select(sa.func.setval(sequence, top + 1, False)))
