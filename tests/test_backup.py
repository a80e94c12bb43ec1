"""Backup and restore: a round trip into an empty database reproduces every row (table
checksums), incrementally too, deletions included; last write wins, --force, --dry-run."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from pipeline.backup import backup, table_checksums, tables
from pipeline.jobs import claim, finish
from pipeline.post_review_cli import backup_cmd, restore_cmd
from pipeline.restore import restore
from pipeline.workers import stamp
from ra_app.core.accounts import set_role
from ra_app.core.api_keys import create_key
from ra_app.core.models import (
    ApiSubmission,
    Assignment,
    AssignmentStatus,
    Batch,
    BatchStatus,
    Decision,
    ImportedItem,
    JobRun,
    JobStatus,
    LexiconTerm,
    Origin,
    Report,
    ReportKind,
    ReviewDecision,
    ReviewTally,
    Role,
    Segment,
    TaskType,
    TranscriptRevision,
    User,
    WordAlignment,
    utcnow,
)
from ra_app.core.outbox import enqueue
from ra_app.core.revisions import latest_transcript, latest_translation, write_revisions
from ra_app.extensions import db
from ra_app.review.gold import set_gold

from .conftest import make_app
from .test_segment import RATE, stored_sample

ROWS = [
    {"start": 0.5, "end": 3.0, "text": "em check email rồi nha", "translation": "em xem thư rồi"},
    {"start": 3.5, "end": 6.0, "text": "deadline thứ sáu", "translation": "hạn chót thứ sáu"},
]


def populate(app) -> dict:
    """A row in every table, cycles of foreign keys included."""
    with app.app_context():
        admin = User(email="admin@example.org", role=Role.ADMIN, password_hash="x")
        reviewer = User(email="rev@example.org", role=Role.REVIEWER, password_hash="y")
        db.session.add_all([admin, reviewer])
        db.session.commit()
        sample = stored_sample(app, np.zeros(7 * RATE, dtype=np.int16), ROWS)
        machine = latest_transcript(sample.id)
        batch = Batch(name="batch 1", task_type=TaskType.TRANSCRIPT_CORRECTION, filters={"a": 1})
        db.session.add(batch)
        db.session.flush()
        task = Assignment(
            sample_id=sample.id,
            batch_id=batch.id,
            task_type=TaskType.TRANSCRIPT_CORRECTION,
            reviewer_id=reviewer.id,
            status=AssignmentStatus.SUBMITTED,
            base_transcript_revision_id=machine.id,
            base_translation_revision_id=latest_translation(sample.id).id,
            draft={"sentences": [{"text": "bản nháp"}]},
        )
        db.session.add(task)
        db.session.flush()
        second = Assignment(
            sample_id=sample.id,
            task_type=TaskType.TRANSCRIPT_CORRECTION,
            review_of_id=task.id,  # a self-reference
            is_gold=True,
            gold_revision_id=machine.id,
        )
        db.session.add(second)
        db.session.flush()
        human, _ = write_revisions(  # points at the task (the use_alter cycle)
            sample,
            [dict(ROWS[0], text="em check email rồi nhé"), ROWS[1]],
            origin=Origin.HUMAN,
            with_translation=True,
            author_id=reviewer.id,
            assignment_id=task.id,
            base_transcript=machine,
        )
        db.session.flush()
        db.session.add_all(
            [
                WordAlignment(
                    sample_id=sample.id,
                    transcript_revision_id=human.id,
                    sentence_index=0,
                    word_index=k,
                    word=word,
                    start_s=0.5 + 0.4 * k,
                    end_s=0.8 + 0.4 * k,
                    score=0.5 + k / 10,
                    language="en" if word in ("check", "email") else "vi",
                    interpolated=k == 4,
                )
                for k, word in enumerate("em check email rồi nhé".split())
            ]
            + [
                Segment(sample_id=sample.id, position=p, start_s=s, end_s=e, text=f"seg {p}")
                for p, (s, e) in enumerate([(0.3, 3.2), (3.3, 6.2)])
            ]
            + [
                ReviewDecision(
                    assignment_id=task.id,
                    reviewer_id=reviewer.id,
                    decision=Decision.SUBMIT,
                    transcript_revision_id=human.id,
                ),
                LexiconTerm(term="deadline", kind="keep_english", note="giữ nguyên"),
                ImportedItem(
                    tool="label_studio",
                    sample_id=sample.id,
                    item="annotation",
                    item_id="7",
                    item_version="2026-11-29T18:45:22.456111Z",
                    transcript_revision_id=human.id,
                ),
                Report(
                    kind=ReportKind.SKIP,
                    assignment_id=task.id,
                    sample_id=sample.id,
                    reporter_id=reviewer.id,
                    reason="không rành chủ đề",
                ),
            ]
        )
        key, _ = create_key("gateway", ["submit", "read"], admin.id)
        db.session.add(
            ApiSubmission(
                api_key_id=key.id,
                external_id="order-17",
                kind="youtube",
                reference="vid00000001",
                subject="youtube:vid00000001",
                sample_id=sample.id,
                webhook_url="http://127.0.0.1:9/hook",
                notified="transcribed",
            )
        )
        message = enqueue("pipeline.segment", [str(sample.id)], sample_id=sample.id)
        db.session.commit()
        message.sent_at = utcnow()
        db.session.commit()
        stamp("cpu-host@example", ["cpu", "io"])
        held = claim("segment", str(sample.id), sample_id=sample.id)
        finish(held, JobStatus.SUCCEEDED, result={"segments": 2})
        return {
            "sample_id": sample.id,
            "machine_id": machine.id,
            "reviewer_id": reviewer.id,
            "batch_id": batch.id,
            "task_id": task.id,
        }


@pytest.fixture
def second_app(empty_database, tmp_path):
    """An app on a second, empty database with the schema (`flask db upgrade`)."""
    other = make_app(empty_database(), tmp_path / "data2")
    with other.app_context():
        upgrade()
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def checksums(app) -> dict:
    with app.app_context():
        db.session.remove()
        return table_checksums()


def test_full_backup_round_trips_into_an_empty_database(app, second_app, tmp_path):
    ids = populate(app)
    source = checksums(app)
    assert all(source[t.name]["rows"] > 0 for t in tables()), source  # every table has rows
    folder = tmp_path / "db_sync"
    with app.app_context():
        manifest = backup(full=True, out_dir=folder)
    assert manifest["kind"] == "full"
    backup_path = folder / manifest["backup_id"]
    for name, entry in manifest["tables"].items():
        assert entry["rows_sha256"] == source[name]["sha256"]
        with gzip.open(backup_path / entry["file"], "rt") as fh:
            assert sum(1 for _ in fh) == source[name]["rows"]
    assert (
        json.loads((folder / "checkpoint.json").read_text())["backup_id"] == manifest["backup_id"]
    )

    result = second_app.test_cli_runner().invoke(restore_cmd, ["--from", str(folder)])
    assert result.exit_code == 0, result.output
    assert checksums(second_app) == source
    # The reviewers' tallies are not backed up but recounted from what was restored.
    assert "review_tallies" not in manifest["tables"]
    with second_app.app_context():
        restored = {
            (t.batch_id, t.reviewer_id): t.tasks_done
            for t in db.session.scalars(sa.select(ReviewTally))
        }
    assert restored == {(ids["batch_id"], ids["reviewer_id"]): 1}
    with second_app.app_context():  # the sequences moved past the restored ids
        user = User(email="new@example.org", password_hash="z")
        db.session.add(user)
        db.session.commit()
        assert user.id > max(u.id for u in db.session.scalars(sa.select(User)) if u is not user)


def test_incremental_backups_carry_changes_and_deletions(app, second_app, tmp_path):
    app.config["BACKUP_OVERLAP_SECONDS"] = 0
    ids = populate(app)
    folder = tmp_path / "db_sync"
    with app.app_context():
        full = backup(full=True, out_dir=folder)
    with second_app.app_context():
        restore(src_dir=folder)

    with app.app_context():  # a segment replaced at the same position, a title, a new user
        old = db.session.scalar(sa.select(Segment).where(Segment.position == 1))
        db.session.delete(old)
        db.session.flush()
        db.session.add(
            Segment(sample_id=ids["sample_id"], position=1, start_s=3.4, end_s=6.1, text="new")
        )
        first = db.session.scalar(sa.select(Segment).where(Segment.position == 0))
        first.text = "seg 0, edited"
        db.session.add(User(email="late@example.org", password_hash="w"))
        db.session.commit()
        incremental = backup(out_dir=folder)
    assert incremental["kind"] == "incremental" and incremental["after"] == full["backup_id"]
    counts = {name: entry["rows"] for name, entry in incremental["tables"].items()}
    assert counts["segments"] == 2 and counts["users"] == 1 and counts["samples"] == 0
    assert sum(counts.values()) < sum(e["rows"] for e in full["tables"].values())

    with second_app.app_context():
        report = restore(src_dir=folder)
    assert report.tables["segments"].deleted == 1
    assert report.tables["segments"].updated == 1 and report.tables["users"].inserted == 1
    assert checksums(second_app) == checksums(app)


def test_last_write_wins_unless_forced_and_dry_run_writes_nothing(app, second_app, tmp_path):
    populate(app)
    folder = tmp_path / "db_sync"
    with app.app_context():
        backup(full=True, out_dir=folder)
    with second_app.app_context():
        restore(src_dir=folder)
        term = db.session.scalar(sa.select(LexiconTerm))
        term.note = "changed here, later"  # stamped by the database: newer than the backup
        db.session.commit()
    before = checksums(second_app)

    runner = second_app.test_cli_runner()
    dry = runner.invoke(restore_cmd, ["--from", str(folder), "--force", "--dry-run"])
    assert dry.exit_code == 0 and "rolled back" in dry.output, dry.output
    assert checksums(second_app) == before

    kept = runner.invoke(restore_cmd, ["--from", str(folder)])
    assert kept.exit_code == 0, kept.output
    with second_app.app_context():
        assert db.session.scalar(sa.select(LexiconTerm.note)) == "changed here, later"

    forced = runner.invoke(restore_cmd, ["--from", str(folder), "--force"])
    assert forced.exit_code == 0, forced.output
    with second_app.app_context():
        assert db.session.scalar(sa.select(LexiconTerm.note)) == "giữ nguyên"
    assert checksums(second_app) == checksums(app)


def test_backup_command(app, runner, tmp_path):
    populate(app)
    app.config["BACKUP_DIR"] = str(tmp_path / "sync")
    dry = runner.invoke(backup_cmd, ["--dry-run"])
    assert dry.exit_code == 0 and "would write" in dry.output, dry.output
    assert not (tmp_path / "sync").exists()
    first = runner.invoke(backup_cmd, [])
    assert first.exit_code == 0 and first.output.splitlines()[-1].startswith("full backup")
    second = runner.invoke(backup_cmd, [])
    assert second.exit_code == 0 and "incremental backup" in second.output
    again = runner.invoke(backup_cmd, ["--full"])
    assert "full backup" in again.output.splitlines()[-1]
    assert len([p for p in (tmp_path / "sync").iterdir() if p.is_dir()]) == 3
    missing = runner.invoke(restore_cmd, ["--from", str(tmp_path)])
    assert missing.exit_code != 0 and "no full backup" in missing.output


def json_nulls(app) -> dict:
    """Per nullable JSON column: (rows with SQL NULL, rows with a JSON `null`)."""
    found = {}
    with app.app_context():
        for table, column in [
            ("assignments", "draft"),
            ("assignments", "answer"),
            ("samples", "denoise_info"),
            ("job_runs", "result"),
        ]:
            found[f"{table}.{column}"] = db.session.execute(
                sa.text(
                    f"SELECT count(*) FILTER (WHERE {column} IS NULL), "
                    f"count(*) FILTER (WHERE jsonb_typeof({column}) = 'null') FROM {table}"
                )
            ).one()
    return found


def test_backup_drop_restore_gives_back_identical_tables(app, second_app, tmp_path):
    """`flask backup --full` as an operator runs it (a stage with its own job run), the
    database dropped, an empty one migrated and restored: every table as it was, SQL NULL
    still NULL, and the backup's own run, running while it was taken, left out."""
    populate(app)
    app.config["BACKUP_DIR"] = str(tmp_path / "sync")
    assert app.test_cli_runner().invoke(backup_cmd, ["--full"]).exit_code == 0
    with app.app_context():
        own = db.session.scalar(sa.select(JobRun).where(JobRun.stage == "backup"))
        assert own.status is JobStatus.SUCCEEDED
        db.session.delete(own)  # the database as the backup saw it, less its own run
        db.session.commit()
    source, nulls = checksums(app), json_nulls(app)
    assert all(count == 0 for _, count in nulls.values()), nulls  # nothing writes JSON null
    assert nulls["assignments.draft"][0] == 1 and nulls["assignments.answer"][0] == 2

    result = second_app.test_cli_runner().invoke(restore_cmd, ["--from", str(tmp_path / "sync")])
    assert result.exit_code == 0, result.output
    assert checksums(second_app) == source
    assert json_nulls(second_app) == nulls
    with second_app.app_context():
        assert not db.session.scalar(
            sa.select(sa.func.count()).where(JobRun.status == JobStatus.RUNNING)
        )


def test_incremental_backup_carries_marks_roles_batch_status_and_decisions(
    app, second_app, tmp_path
):
    app.config["BACKUP_OVERLAP_SECONDS"] = 0
    ids = populate(app)
    folder = tmp_path / "db_sync"
    with app.app_context():
        backup(full=True, out_dir=folder)
    with second_app.app_context():
        restore(src_dir=folder)

    with app.app_context():  # changes that touch no created_at
        set_gold(db.session.get(TranscriptRevision, ids["machine_id"]), True)
        set_role(db.session.get(User, ids["reviewer_id"]), Role.ADMIN)
        db.session.get(Batch, ids["batch_id"]).status = BatchStatus.PAUSED
        db.session.add(
            ReviewDecision(
                assignment_id=ids["task_id"],
                reviewer_id=ids["reviewer_id"],
                decision=Decision.APPROVE,
                comment="fine",
            )
        )
        db.session.commit()
        incremental = backup(out_dir=folder)
    counts = {name: entry["rows"] for name, entry in incremental["tables"].items()}
    assert counts["transcript_revisions"] == 1 and counts["users"] == 1
    assert counts["batches"] == 1 and counts["review_decisions"] == 1

    with second_app.app_context():
        restore(src_dir=folder)
        assert db.session.get(TranscriptRevision, ids["machine_id"]).is_gold
        assert db.session.get(User, ids["reviewer_id"]).role is Role.ADMIN
        assert db.session.get(Batch, ids["batch_id"]).status is BatchStatus.PAUSED
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).where(ReviewDecision.decision == Decision.APPROVE)
            )
            == 1
        )
    assert checksums(second_app) == checksums(app)


def test_the_database_keeps_updated_at_whatever_writes_the_row(app):
    ids = populate(app)
    with app.app_context():
        before = db.session.get(Batch, ids["batch_id"]).updated_at
        db.session.execute(sa.text("UPDATE batches SET name = 'renamed by hand'"))
        db.session.commit()
        db.session.expire_all()
        assert db.session.get(Batch, ids["batch_id"]).updated_at > before


def test_two_copies_stamped_the_same_instant_converge(app, second_app, tmp_path):
    """The same row changed on two databases with the same stamp: each takes the other's
    backup, and both end with the same copy (the greater canonical line), not each its own."""
    populate(app)
    with app.app_context():
        backup(full=True, out_dir=tmp_path / "a")
    with second_app.app_context():
        restore(src_dir=tmp_path / "a")
    moment = utcnow()
    for each, note in ((app, "note from a"), (second_app, "note from b")):
        with each.app_context():
            with db.engine.begin() as conn:
                conn.execute(sa.text("SET LOCAL app.restoring = 'on'"))  # keep our stamp
                conn.execute(sa.update(LexiconTerm).values(note=note, updated_at=moment))
    with app.app_context():
        backup(full=True, out_dir=tmp_path / "a2")
    with second_app.app_context():
        backup(full=True, out_dir=tmp_path / "b")
        restore(src_dir=tmp_path / "a2")
    with app.app_context():
        restore(src_dir=tmp_path / "b")
    notes = []
    for each in (app, second_app):
        with each.app_context():
            notes.append(db.session.scalar(sa.select(LexiconTerm.note)))
    assert notes == ["note from b", "note from b"]
