"""Restoring the database from its backups (`flask restore [--force] [--dry-run]`;
pipeline/backup.py writes them).

Applies the newest full backup and every incremental one after it, in one transaction,
table by table in foreign-key order, keeping the backup's `updated_at` stamps. Last write
wins by `updated_at`: a row is written when the database has no row with its key, or an
older one; a newer row in the database is kept (`--force`: the backup always wins). Two
copies stamped the same instant are resolved by their content (the greater canonical line
wins), so two databases that exchange backups end up the same. A job run that was running
when the backup was taken comes back `expired`: no worker of this database holds its claim.
Rows absent from the newest backup's key lists were deleted at the source: they are
deleted here too, unless the database's copy is newer than that backup. Foreign keys that
form cycles (and self-references) are written in a second pass, so rows can arrive in any
order. `deletes=False` (merging another machine's backups, `flask sync`) deletes nothing:
a row only this database has is its own work, not a deletion at the source. Postgres
sequences are moved
past the restored ids. `--dry-run` runs all of it and rolls back, reporting the counts.
The backup's Alembic revision must match the database's (run `flask db upgrade` first).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ra_app.core import tallies
from ra_app.core.clock import as_utc
from ra_app.extensions import db

from .backup import (
    BATCH,
    MANIFEST,
    BackupError,
    backup_dir,
    canonical,
    decode,
    deferred_columns,
    encode,
    key_column,
    row_line,
    schema_revision,
    stamp_column,
    tables,
)


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
            as_utc(row._mapping[stamp]) if stamp is not None and row._mapping[stamp] else None,
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
    backup_stamp = as_utc(backup_stamp)
    if backup_stamp != database_stamp:
        return backup_stamp > database_stamp
    return backup_line > database_line


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


def restore(
    *,
    force: bool = False,
    dry_run: bool = False,
    src_dir: Path | None = None,
    deletes: bool = True,
):
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
            for table in reversed(tables()) if deletes else []:
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
    if not dry_run:
        tallies.rebuild()  # derived from what was just restored (backup.DERIVED)
        db.session.commit()
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
        and (force or stamp is None or row[1] is None or as_utc(row[1]) <= newest_at)
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
