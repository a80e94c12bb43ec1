"""Frozen export snapshots of the staged training data (`flask export`).

Snapshot (`flask export`): every export gets an id and a folder ``<root>/exports/<id>/``
(in the bucket with S3 storage, `export.json` written last) that never changes afterwards::

    data/{task_type}/{sample_id}/...   hard links to the staged files (copies across file
                                       systems or from the bucket): a later export replaces the
                                       staged folder, so the snapshot's files stay as they were
    manifest.jsonl, train.jsonl, dev.jsonl, test.jsonl   the segment manifest, whole and split
    samples.jsonl      one line per sample folder
    export.json        id, time, filters, counts
    SHA256SUMS         `sha256sum -c` format, every file above
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ra_app.core.files import sha256_file
from ra_app.core.media_store import drop_work_dir, fetch_dir, is_local, label, publish_dir, work_dir
from ra_app.core.models import Sample, TaskType, iso_utc, utcnow

from .export_docs import content_of, read_jsonl, write_json, write_jsonl
from .jobs import ClaimTaken, stage_run
from .stages.common import outcome
from .stages.export import (
    SPLITS,
    STAGE,
    export_store,
    last_export,
    reviewed_samples,
    run,
    subject_of,
)


def new_export_id() -> str:
    return f"{utcnow():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def write_checksums(folder: Path) -> None:
    lines = [
        f"{sha256_file(path)}  {path.relative_to(folder).as_posix()}\n"
        for path in sorted(p for p in folder.rglob("*") if p.is_file())
    ]
    (folder / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


def verify_checksums(folder: Path) -> list[str]:
    """Files whose content no longer matches SHA256SUMS (empty when all is well)."""
    bad = []
    for line in (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            bad.append(name)
    return bad


def snapshot(staged: list[tuple[str, str]], root, export_id: str, filters: dict) -> Path | str:
    """Freeze the staged folders `(task_type, sample_id)` of the export store `root` as
    `exports/<export_id>/`; returns where it is (a folder, or its place in the bucket)."""
    name = f"snapshot-{export_id}"
    scratch = work_dir(name, root)
    try:
        manifest, samples = [], []
        for task_type, sample_id in staged:
            rel = f"data/{task_type}/{sample_id}"
            fetch_dir(root, f"reviewed/{task_type}/{sample_id}", scratch / rel)
            for line in read_jsonl(scratch / rel / "segments.jsonl"):
                for field in ("audio_filepath", "clip_filepath", "denoised_filepath"):
                    if line.get(field):
                        line[field] = f"{rel}/{line[field]}"
                manifest.append(line)
            meta = json.loads((scratch / rel / "metadata.json").read_text(encoding="utf-8"))
            samples.append(
                {
                    "sample_id": sample_id,
                    "task_type": task_type,
                    "folder": rel,
                    "split": meta["split"],
                    "source": meta["source"],
                    "duration_s": meta["sample"]["duration_s"],
                    "segments": meta["segments"],
                    "fingerprint": meta["fingerprint"],
                    "transcript_revision_id": meta["transcript_revision_id"],
                    "translation_revision_id": meta["translation_revision_id"],
                }
            )
        write_jsonl(scratch / "manifest.jsonl", manifest)
        for split in SPLITS:
            write_jsonl(scratch / f"{split}.jsonl", [m for m in manifest if m["split"] == split])
        write_jsonl(scratch / "samples.jsonl", samples)
        write_json(
            scratch / "export.json",
            {
                "export_id": export_id,
                "created_at": iso_utc(utcnow()),
                "filters": filters,
                "samples": len(samples),
                "segments": len(manifest),
                "segment_hours": round(sum(m["duration"] for m in manifest) / 3600, 4),
                "per_split": {
                    split: {
                        "samples": sum(s["split"] == split for s in samples),
                        "segments": sum(m["split"] == split for m in manifest),
                    }
                    for split in SPLITS
                },
                "manifest_format": "NeMo (audio_filepath, offset, duration, text) + extras",
            },
        )
        write_checksums(scratch)
        key = f"exports/{export_id}"
        publish_dir(root, scratch, key, last="export.json")
        return root.path(key) if is_local(root) else f"{label(root)}/{key}"
    finally:
        drop_work_dir(name, root)


@dataclass
class Candidate:
    task_type: TaskType
    sample: Sample


def candidates(
    task_types: list[TaskType], limit: int | None, include_exported: bool, sample_ids=None
) -> list[Candidate]:
    """What `flask export` takes: reviewed samples not yet in a snapshot in their current
    form (all reviewed samples with `include_exported`)."""
    chosen: list[Candidate] = []
    for task_type in task_types:
        for sample in reviewed_samples(task_type, sample_ids):
            if limit is not None and len(chosen) >= limit:
                return chosen
            if not include_exported:
                previous = last_export(task_type, sample.id, in_snapshot=True)
                if (
                    previous
                    and previous.get("fingerprint") == content_of(sample, task_type).fingerprint()
                ):
                    continue
            chosen.append(Candidate(task_type, sample))
    return chosen


def make_export(
    task_types: list[TaskType],
    *,
    limit: int | None = None,
    output_dir: str | os.PathLike | None = None,
    include_exported: bool = False,
    dry_run: bool = False,
    sample_ids=None,
) -> dict:
    """Stage the chosen samples (each under its export claim) and freeze them as one
    snapshot. Returns the snapshot's id and folder (None when nothing was exported) and
    one outcome per sample; one failing sample does not stop the others."""
    root = export_store(output_dir)
    export_id = new_export_id()
    chosen = candidates(task_types, limit, include_exported, sample_ids)
    filters = {
        "task_types": [t.value for t in task_types],
        "limit": limit,
        "include_exported": include_exported,
        "sample_ids": [str(s) for s in sample_ids] if sample_ids is not None else None,
    }
    outcomes, staged = [], []
    for c in chosen:
        sample_id = c.sample.id
        if dry_run:
            outcomes.append(
                run(sample_id, task_type=c.task_type, dry_run=True, output_dir=output_dir)
            )
            continue
        try:
            with stage_run(STAGE, subject_of(c.task_type, sample_id), sample_id=sample_id) as job:
                job.result = run(
                    sample_id, task_type=c.task_type, output_dir=output_dir, export_id=export_id
                )
        except ClaimTaken as taken:
            outcomes.append(outcome("busy", sample_id, str(taken)))
            continue
        except Exception as error:  # recorded in job_runs by stage_run; the rest go on
            outcomes.append(outcome("failed", sample_id, f"{type(error).__name__}: {error}"))
            continue
        outcomes.append(job.result)
        if job.result["status"] in ("exported", "already_exported"):
            staged.append((c.task_type.value, str(sample_id)))
    folder = None
    if staged and not dry_run:
        folder = snapshot(staged, root, export_id, filters)
    return {
        "export_id": export_id if folder else None,
        "folder": folder,
        "outcomes": outcomes,
        "samples": len(staged),
    }
