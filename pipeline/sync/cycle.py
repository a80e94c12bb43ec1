"""One machine's data and a shared DVC remote kept in step (`flask sync`).

A push: an incremental database backup (pipeline/backup.py's JSONL) into `db_sync/`, then
`dvc add` of the tracked folders (`samples/`, the media, when they are on this machine's
disk; `db_sync/`, the backups; `exports/`, the frozen export snapshots) and `dvc push`;
last, this machine's manifest on the remote (`review-sync/<machine>.json`: each folder's
DVC hash, the backup, the schema revision and the tables' row checksums). The manifest is
the commit: a push that fails or is killed halfway leaves the remote's manifest as it was,
and the next cycle pushes what is missing and then writes it.

A pull: each other machine's manifest newer than the one last applied here is pulled into
a staging folder (`.sync-incoming/<machine>/`), its backups merged into the database under
the restore's last-write-wins rule without deletions (a row only this database has is its
own work), and its media and exports files that are not here copied in. Two machines that
push and pull through one remote so converge row by row.

A forced restore (a new machine): the chosen machine's folders pulled in place, its backups
restored with --force, and the tables' checksums compared with its manifest.

Rows with integer keys made on two machines between syncs share ids: the newer wins. So a
second machine that writes should write work keyed by UUIDs (reviews, revisions, samples)
or stay a standby.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app

from ra_app.core.media_store import is_local, media_storage
from ra_app.extensions import db

from ..backup import backup, backup_dir, schema_revision, table_checksums
from ..restore import restore
from .dvc import REMOTE, DvcRepo, SyncError

MEDIA, BACKUPS, EXPORTS = "samples", "db_sync", "exports"
STATE = ".dvc/review-sync-state.json"
INCOMING = ".sync-incoming"


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


def data_root() -> Path:
    return Path(current_app.config["DATA_ROOT"]).resolve()


def machine_name() -> str:
    return current_app.config.get("SYNC_MACHINE") or socket.gethostname()


def dvc_repo() -> DvcRepo:
    remote = current_app.config.get("SYNC_REMOTE")
    if not remote:
        raise SyncError(
            "SYNC_REMOTE is not set: a folder, s3://bucket/prefix or gdrive://folder-id"
        )
    root = data_root()
    if backup_dir() != root / BACKUPS:
        raise SyncError(f"flask sync versions backups in {root / BACKUPS}: unset BACKUP_DIR")
    return DvcRepo(root, remote)


def tracked_folders() -> list[str]:
    """What a push versions: the media only where they are on this disk (with S3 storage
    they are in the bucket already), and the folders that exist."""
    names = [MEDIA] if is_local(media_storage()) else []
    names += [BACKUPS, EXPORTS]
    return [name for name in names if (data_root() / name).is_dir()]


@contextmanager
def sync_lock(root: Path):
    """One `flask sync` per data folder at a time."""
    path = root / ".dvc" / "tmp" / "review-sync.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncError("another flask sync is running on this data folder") from None
        yield


def read_state(root: Path) -> dict:
    path = root / STATE
    return json.loads(path.read_text()) if path.exists() else {"applied": {}}


def write_state(root: Path, state: dict) -> None:
    partial = root / f"{STATE}.part"
    partial.write_text(json.dumps(state, indent=1, sort_keys=True))
    partial.replace(root / STATE)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


# --- push -------------------------------------------------------------------------------------


def push(repo: DvcRepo, outcome: Outcome) -> dict:
    started = time.monotonic()
    made = backup()
    folders = tracked_folders()
    repo.add(folders)
    repo.push([f"{name}.dvc" for name in folders])
    tables = table_checksums()
    manifest = {
        "machine": machine_name(),
        "pushed_at": now_iso(),
        "backup_id": made["backup_id"],
        "schema_revision": made["schema_revision"],
        "outs": {name: repo.tracked(name) for name in folders},
        "tables": tables,
    }
    repo.write_manifest(machine_name(), manifest)
    state = read_state(repo.root)
    state["pushed"] = {k: manifest[k] for k in ("pushed_at", "backup_id")}
    write_state(repo.root, state)
    rows = sum(t["rows"] for t in tables.values())
    files = sum(out.get("nfiles", 0) for out in manifest["outs"].values())
    outcome.say(
        f"pushed {', '.join(folders)}: {files} files, backup {made['backup_id']} "
        f"({rows} rows in the database) in {time.monotonic() - started:.1f} s"
    )
    return manifest


# --- pull -------------------------------------------------------------------------------------


def pull(repo: DvcRepo, outcome: Outcome) -> None:
    state = read_state(repo.root)
    for machine, manifest in sorted(repo.manifests().items()):
        if machine == machine_name() or state["applied"].get(machine) == manifest["pushed_at"]:
            continue
        started = time.monotonic()
        staging = repo.root / INCOMING / machine
        shutil.rmtree(staging, ignore_errors=True)
        targets = []
        for name, out in manifest["outs"].items():
            repo.write_tracked(staging / f"{name}.dvc", out)
            targets.append(str((staging / f"{name}.dvc").relative_to(repo.root)))
        repo.pull(targets)
        report = None
        if BACKUPS in manifest["outs"]:
            report = restore(src_dir=staging / BACKUPS, deletes=False)
        copied = sum(
            copy_missing(staging / name, repo.root / name)
            for name in (MEDIA, EXPORTS)
            if name in manifest["outs"]
        )
        state["applied"][machine] = manifest["pushed_at"]
        write_state(repo.root, state)
        shutil.rmtree(staging, ignore_errors=True)
        changed = sum(t.inserted + t.updated for t in report.tables.values()) if report else 0
        outcome.say(
            f"pulled {machine} (pushed {manifest['pushed_at']}): {changed} rows written, "
            f"{copied} files copied in {time.monotonic() - started:.1f} s"
        )


def copy_missing(src: Path, dest: Path) -> int:
    """Files under `src` that `dest` lacks, linked (else copied) in; returns how many."""
    copied = 0
    for path in src.rglob("*"):
        target = dest / path.relative_to(src)
        if path.is_dir() or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        try:
            os.link(path, partial)
        except OSError:
            shutil.copy2(path, partial)
        partial.replace(target)
        copied += 1
    return copied


# --- force-restore ----------------------------------------------------------------------------


def force_restore(repo: DvcRepo, outcome: Outcome, source: str | None = None) -> None:
    manifests = repo.manifests()
    if not manifests:
        raise SyncError("the remote holds no machine's data yet: run `flask sync` there first")
    if source is None:
        source = max(manifests, key=lambda m: manifests[m]["pushed_at"])
    if source not in manifests:
        raise SyncError(f"no machine {source!r} on the remote (it has: {', '.join(manifests)})")
    manifest = manifests[source]
    with db.engine.connect() as conn:
        here = schema_revision(conn)
    if here != manifest["schema_revision"]:
        raise SyncError(
            f"{source}'s data is of schema revision {manifest['schema_revision']}, this "
            f"database is at {here}: install that release and run `flask db upgrade` first"
        )
    started = time.monotonic()
    for name, out in manifest["outs"].items():
        repo.write_tracked(repo.root / f"{name}.dvc", out)
    repo.pull([f"{name}.dvc" for name in manifest["outs"]])
    restore(src_dir=repo.root / BACKUPS, force=True)
    here = table_checksums()
    outcome.mismatched = sorted(
        name for name, sums in manifest["tables"].items() if here.get(name) != sums
    )
    state = read_state(repo.root)
    state["applied"][source] = manifest["pushed_at"]
    write_state(repo.root, state)
    rows = sum(t["rows"] for t in here.values())
    files = sum(out.get("nfiles", 0) for out in manifest["outs"].values())
    outcome.say(
        f"restored {source} (pushed {manifest['pushed_at']}): {rows} rows in "
        f"{len(here)} tables, {files} files (each checked by DVC against its hash) in "
        f"{time.monotonic() - started:.1f} s"
    )
    if outcome.mismatched:
        outcome.say(
            f"these tables differ from {source}'s checksums: {', '.join(outcome.mismatched)} "
            "(rows changed there between its backup and its checksums?)"
        )
    else:
        outcome.say(f"every table's row checksum matches {source}'s")


# --- status -----------------------------------------------------------------------------------


def status(repo: DvcRepo, outcome: Outcome) -> None:
    state = read_state(repo.root)
    pushed = state.get("pushed")
    outcome.say(f"this machine: {machine_name()}, remote {repo.remote_url}")
    outcome.say(
        f"last push: {pushed['pushed_at']} (backup {pushed['backup_id']})"
        if pushed
        else "never pushed"
    )
    folders = [f"{name}.dvc" for name in tracked_folders() if (repo.root / f"{name}.dvc").exists()]
    if folders:
        cloud = repo.run("status", "--cloud", "--remote", REMOTE, *folders, quiet=True).strip()
        in_sync = "are in sync" in cloud or "up to date" in cloud
        outcome.say("remote: " + ("up to date" if in_sync else "not yet pushed:"))
        if not in_sync:
            outcome.lines += ["  " + line for line in cloud.splitlines() if line.strip()]
    for machine, manifest in sorted(repo.manifests().items()):
        if machine == machine_name():
            continue
        applied = state["applied"].get(machine) == manifest["pushed_at"]
        outcome.say(
            f"machine {machine}: pushed {manifest['pushed_at']}, "
            + ("applied here" if applied else "not yet pulled")
        )
