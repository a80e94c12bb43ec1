"""Hidden gold tasks and their scores, the quality report against SQL, and the revision
audit (history, one revision, compare)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ra_app.admin import batches, quality
from ra_app.core import tallies
from ra_app.core.models import (
    Assignment,
    Origin,
    ReviewTally,
    Role,
    Sample,
    TaskType,
    TranscriptRevision,
    User,
)
from ra_app.core.revisions import latest_transcript, write_revisions
from ra_app.extensions import db
from ra_app.review import reports
from ra_app.review.work import decide, submit

from .conftest import csrf_token_from
from .review_helpers import claim, make_review_sample
from .test_staged_review import current_rows


@pytest.fixture
def people(make_user):
    return (
        make_user("boss@example.com", Role.ADMIN),
        make_user("r1@example.com"),
        make_user("r2@example.com"),
    )


GOLD_TEXT = ["câu một đúng rồi", "câu hai có meeting", "câu ba okay"]


def gold_sample(tmp_path) -> Sample:
    """A sample whose human transcript (v2) is known to be right."""
    sample = make_review_sample(tmp_path, duration_s=13.0, title="mẫu vàng", freq=440)
    rows = current_rows(sample.id)
    for row, words in zip(rows, GOLD_TEXT, strict=False):
        row["text"] = words
    write_revisions(sample, rows, origin=Origin.HUMAN, with_translation=True)
    db.session.commit()
    return sample


def test_gold_tasks_are_hidden_in_queues_and_scored(app, client, auth, people, tmp_path):
    boss, r1, r2 = people
    with app.app_context():
        sample = gold_sample(tmp_path)
        sample_id = str(sample.id)
        gold_id = str(latest_transcript(sample.id).id)
        for i in range(3):
            make_review_sample(tmp_path, duration_s=8.0, title=f"thật {i}", freq=300 + i * 50)
        batch = batches.create_batch(
            "with gold",
            batches.Filters(task_type=TaskType.TRANSCRIPT_CORRECTION, not_reviewed=True),
            [db.session.get(User, r1.id), db.session.get(User, r2.id)],
            mode="even",
        )
        batch_id = batch.id
        revisions_before = db.session.scalar(
            sa.select(sa.func.count()).where(TranscriptRevision.sample_id == sample.id)
        )

    auth.login(boss.email)
    page = client.get(f"/admin/samples/{sample_id}").get_data(as_text=True)
    token = csrf_token_from(page)
    marked = client.post(
        f"/admin/samples/{sample_id}/gold",
        data={"csrf_token": token, "revision_id": gold_id, "gold": "y"},
        follow_redirects=True,
    )
    assert "is now the gold answer" in marked.get_data(as_text=True)
    detail = client.get(f"/admin/batches/{batch_id}").get_data(as_text=True)
    assert "mẫu vàng" in detail  # offered as a gold answer
    added = client.post(
        f"/admin/batches/{batch_id}/action",
        data={"csrf_token": token, "action": "gold", "revision_id": gold_id},
        follow_redirects=True,
    )
    assert "Mixed 2 hidden gold task(s)" in added.get_data(as_text=True)
    again = client.post(
        f"/admin/batches/{batch_id}/action",
        data={"csrf_token": token, "action": "gold", "revision_id": gold_id},
        follow_redirects=True,
    )
    assert "Mixed 0 hidden gold task(s)" in again.get_data(as_text=True)  # one per reviewer
    auth.logout()

    scores = {}
    for user, typed in ((r1, GOLD_TEXT), (r2, None)):
        with app.app_context():
            gold_task = db.session.scalar(
                sa.select(Assignment).where(
                    Assignment.is_gold.is_(True), Assignment.reviewer_id == user.id
                )
            )
            # It sits among the reviewer's tasks, and starts from the machine draft.
            assert gold_task.batch_id == batch_id and gold_task.status.value == "pending"
            task_id = str(gold_task.id)
            for _ in range(5):
                task = claim(user.id)
                if str(task.id) == task_id:
                    break
                submit(
                    task, db.session.get(User, user.id), {"sentences": current_rows(task.sample_id)}
                )
            else:
                pytest.fail("the gold task never came up")
        auth.login(user.email)
        page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
        assert "gold" not in page.lower() and "câu một đúng rồi" not in page  # hidden
        token = csrf_token_from(page)
        with app.app_context():
            rows = current_rows(sample_id)
            machine = db.session.get(TranscriptRevision, gold_task.base_transcript_revision_id)
            rows = [{**r, "text": m["text"]} for r, m in zip(rows, machine.sentences, strict=True)]
        if typed:
            for row, words in zip(rows, typed, strict=False):
                row["text"] = words
        done = client.post(
            f"/tasks/{task_id}/submit", json={"sentences": rows}, headers={"X-CSRFToken": token}
        )
        assert done.status_code == 200, done.get_json()
        auth.logout()
        with app.app_context():
            scores[user.id] = db.session.get(Assignment, task_id).score
    assert scores[r1.id] == 1.0
    assert scores[r2.id] < 0.5  # the machine draft, uncorrected
    with app.app_context():
        # The gold sample's history is untouched by the answers.
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).where(TranscriptRevision.sample_id == sample_id)
            )
            == revisions_before
        )
        overall, rows = quality.report(batch_id)
        by_email = {user.email: q for user, q in rows}
        assert by_email["r1@example.com"].gold_score == 1.0
        assert overall.gold_tasks == 2
        assert overall.gold_score == pytest.approx((scores[r1.id] + scores[r2.id]) / 2)
        [gold_row] = quality.gold_agreement(batch_id)
        assert gold_row["answers"] == 2 and gold_row["pairwise_wer"] > 0.5
    auth.login(boss.email)
    report = client.get("/admin/quality").get_data(as_text=True)
    assert "r1@example.com" in report and "100.0%" in report


def test_quality_report_matches_sql(app, people, tmp_path):
    boss, r1, r2 = people
    with app.app_context():
        for i in range(4):
            make_review_sample(tmp_path, duration_s=8.0, title=f"s{i}", freq=300 + i * 40)
        batch = batches.create_batch(
            "q",
            batches.Filters(task_type=TaskType.TRANSCRIPT_CORRECTION),
            [db.session.get(User, r1.id), db.session.get(User, r2.id)],
            mode="pool",
            review_share=1.0,
        )
        author = db.session.get(User, r1.id)
        for i in range(4):
            task = claim(r1.id)
            rows = current_rows(task.sample_id)
            rows[0]["text"] = f"sửa {i}"
            submit(task, author, {"sentences": rows})
        for i in range(4):
            review = claim(r2.id)
            rows = current_rows(review.sample_id)
            review.listened_fraction = 1.0
            if i % 2:
                rows[1]["text"] = "người thứ hai sửa câu này"
                decide(
                    review,
                    db.session.get(User, r2.id),
                    {"decision": "approve_major", "sentences": rows},
                )
            elif i == 0:
                decide(
                    review,
                    db.session.get(User, r2.id),
                    {"decision": "reject", "comment": "nghe lại"},
                )
            else:
                decide(
                    review, db.session.get(User, r2.id), {"decision": "approve", "sentences": rows}
                )
        overall, rows = quality.report(batch.id)
        q1 = dict((u.email, q) for u, q in rows)["r1@example.com"]
        sql = db.session.execute(
            sa.text(
                "SELECT count(*), avg(d.wer) FILTER (WHERE d.decision <> 'reject') "
                "FROM review_decisions d JOIN assignments r ON r.id = d.assignment_id "
                "JOIN assignments o ON o.id = r.review_of_id WHERE o.reviewer_id = :uid"
            ),
            {"uid": r1.id},
        ).one()
        assert q1.reviewed == sql[0] == 4
        assert q1.agreement_wer == pytest.approx(sql[1]) and q1.agreement_wer > 0
        assert q1.decisions == {"reject": 1, "approve": 1, "approve_major": 2}
        edit = db.session.execute(
            sa.text(
                "SELECT avg(t.wer) FROM transcript_revisions t JOIN assignments a "
                "ON a.id = t.assignment_id WHERE t.author_id = :uid AND a.review_of_id IS NULL"
            ),
            {"uid": r1.id},
        ).scalar()
        assert q1.edit_wer == pytest.approx(edit) and edit > 0
        q2 = dict((u.email, q) for u, q in rows)["r2@example.com"]
        assert q2.second_reviews == 4 and overall.second_reviews == 4
        assert overall.tasks_done == 3  # the rejected one is back with its author

        # The rejected task changes hands (its author gives it back; the other reviewer
        # takes it and submits): the reject stays on its author's record, the task done is
        # the other's; the running tallies equal a recount from scratch.
        again = claim(r1.id)
        reports.report(again, author, {"kind": "skip", "reason": "bận việc khác"})
        taken = claim(r2.id)
        assert taken.id == again.id
        submit(taken, db.session.get(User, r2.id), {"sentences": current_rows(taken.sample_id)})
        overall, rows = quality.report(batch.id)
        assert overall.tasks_done == 4
        by_email = dict((u.email, q) for u, q in rows)
        assert by_email["r1@example.com"].decisions["reject"] == 1
        assert by_email["r2@example.com"].tasks_done == 1
        running = tally_rows()
        tallies.rebuild()
        assert tally_rows() == running


def tally_rows() -> dict:
    """The tallies as {(batch, reviewer): figures}, floats rounded (sums add in any order)."""
    return {
        (t.batch_id, t.reviewer_id): {f: round(getattr(t, f), 9) for f in tallies.FIELDS}
        for t in db.session.scalars(sa.select(ReviewTally))
    }


def test_audit_lists_revisions_and_compares_any_two(app, client, auth, people, tmp_path):
    boss, r1, _ = people
    with app.app_context():
        sample = make_review_sample(tmp_path, duration_s=9.0, title="kiểm tra")
        other = make_review_sample(tmp_path, duration_s=9.0, title="khác", freq=500)
        other_revision = str(latest_transcript(other.id).id)
        sample_id = str(sample.id)
        batches.create_batch(
            "a",
            batches.Filters(task_type=TaskType.TRANSCRIPT_CORRECTION),
            [db.session.get(User, r1.id)],
            mode="even",
        )
        task = claim(r1.id)
        if str(task.sample_id) != sample_id:
            submit(task, db.session.get(User, r1.id), {"sentences": current_rows(task.sample_id)})
            task = claim(r1.id)
        rows = current_rows(sample_id)
        rows[0]["text"] = "câu đầu tiên <script>x</script> đã sửa"
        submit(task, db.session.get(User, r1.id), {"sentences": rows})
        versions = {
            r.version: str(r.id)
            for r in db.session.scalars(
                sa.select(TranscriptRevision).where(TranscriptRevision.sample_id == sample_id)
            )
        }
    auth.login(boss.email)
    page = client.get(f"/admin/samples/{sample_id}").get_data(as_text=True)
    assert "r1@example.com" in page and "v1" in page and "v2" in page
    assert 'data-version="2"' in page and "imported" in page
    one = client.get(f"/admin/samples/{sample_id}/transcript/{versions[1]}")
    assert one.status_code == 200 and "câu số 0 có laptop" in one.get_data(as_text=True)
    compared = client.get(
        f"/admin/samples/{sample_id}/compare",
        query_string={"kind": "transcript", "a": versions[2], "b": versions[1]},
    ).get_data(as_text=True)
    assert "v1 → v2" in compared
    assert "1 row(s) differ" in compared
    assert "&lt;script&gt;" in compared and "<script>x" not in compared
    translations = client.get(f"/admin/samples/{sample_id}").get_data(as_text=True)
    assert "Translation revisions" in translations
    # A revision of another sample is not this sample's.
    foreign = client.get(f"/admin/samples/{sample_id}/transcript/{other_revision}")
    assert foreign.status_code == 404
    found = client.get("/admin/samples", query_string={"q": "kiểm"}).get_data(as_text=True)
    assert "kiểm tra" in found and "khác" not in found
