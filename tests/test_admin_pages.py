"""Admin pages: accounts from the UI and the pipeline dashboard."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from pipeline.jobs import claim, finish
from ra_app.core.models import FailureClass, JobRun, JobStatus, Role, User, utcnow
from ra_app.extensions import db

from .conftest import csrf_token_from


def token(client, url):
    return csrf_token_from(client.get(url).get_data(as_text=True))


def user(app, email):
    with app.app_context():
        return db.session.scalar(sa.select(User).where(User.email == email))


def test_admin_creates_and_manages_accounts(app, client, auth, admin, reviewer):
    auth.login(admin.email)
    csrf = token(client, "/admin/users")
    created = client.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "email": "New.Person@example.org",
            "role": "reviewer",
            "password": "long enough pw",
            "in_training": "y",
        },
        follow_redirects=True,
    )
    assert "Created new.person@example.org" in created.get_data(as_text=True)
    new = user(app, "new.person@example.org")
    assert new.role is Role.REVIEWER and new.in_training and new.check_password("long enough pw")

    def act(target, **data):
        return client.post(
            f"/admin/users/{target.id}", data={"csrf_token": csrf, **data}, follow_redirects=True
        ).get_data(as_text=True)

    act(new, action="role", role="admin")
    assert user(app, new.email).role is Role.ADMIN
    act(new, action="password", password="another password")
    assert user(app, new.email).check_password("another password")
    short = act(new, action="password", password="short")
    assert "at least 8 characters" in short
    act(reviewer, action="disable")
    assert user(app, reviewer.email).is_active is False
    act(reviewer, action="enable")
    assert user(app, reviewer.email).is_active is True
    own = act(admin, action="disable")
    assert "cannot disable your own account" in own and user(app, admin.email).is_active
    duplicate = client.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "email": reviewer.email,
            "role": "reviewer",
            "password": "long enough pw",
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "already exists" in duplicate


def test_user_actions_need_csrf(client, auth, admin, reviewer):
    auth.login(admin.email)
    assert client.post(f"/admin/users/{reviewer.id}", data={"action": "disable"}).status_code == 400


def test_pipeline_dashboard_matches_the_database(app, client, auth, admin, make_sample):
    sample_id = make_sample()
    with app.app_context():
        ok = claim("segment", str(sample_id), sample_id=sample_id)
        finish(ok, JobStatus.SUCCEEDED)
        bad = claim("denoise", str(sample_id), sample_id=sample_id)
        db.session.execute(
            sa.update(JobRun)
            .where(JobRun.id == bad.run_id)
            .values(
                result={
                    "call": {
                        "task": "pipeline.selftest",
                        "args": [],
                        "kwargs": {"subject": "retried"},
                    }
                }
            )
        )
        db.session.commit()
        finish(
            bad,
            JobStatus.FAILED,
            error="TransientError: disk busy",
            failure_class=FailureClass.TRANSIENT,
            result={
                "call": {"task": "pipeline.selftest", "args": [], "kwargs": {"subject": "retried"}}
            },
        )
        gone = claim("ingest", "file:/x.mp3", now=utcnow() - timedelta(minutes=1))
        finish(
            gone,
            JobStatus.FAILED,
            error="PermanentError: file is empty",
            failure_class=FailureClass.PERMANENT,
        )
        expected = dict(
            ((stage, status.value), n)
            for stage, status, n in db.session.execute(
                sa.select(JobRun.stage, JobRun.status, sa.func.count()).group_by(
                    JobRun.stage, JobRun.status
                )
            )
        )
    auth.login(admin.email)
    page = client.get("/admin/pipeline").get_data(as_text=True)
    shown = {
        tuple(k.split(":")): int(v)
        for k, v in re.findall(r'data-runs="([a-z_]+:[a-z]+)">(\d+)<', page)
    }
    for key, count in expected.items():
        assert shown[key] == count
    assert shown[("segment", "failed")] == 0
    assert "disk busy" in page and "file is empty" in page
    assert page.count(">Retry</button>") == 1  # only the transient failure can be retried
    assert 'data-queue="io"' in page
    assert 'data-outbox="0"' in page and "Nothing waiting to be sent" in page


def test_the_dashboard_shows_work_waiting_for_the_dispatcher_and_the_workers_queues(
    app, client, auth, admin
):
    from pipeline.workers import stamp
    from ra_app.core.outbox import enqueue

    with app.app_context():
        enqueue("pipeline.selftest", kwargs={"subject": "waiting"})
        enqueue("pipeline.selftest", kwargs={"subject": "waiting too"})
        db.session.commit()
        stamp("gpu-host@example", ["gpu"])
    auth.login(admin.email)
    page = client.get("/admin/pipeline").get_data(as_text=True)
    assert 'data-outbox="2"' in page and "flask pipeline dispatch" in page
    assert "gpu-host@example" in page


def test_retry_sends_the_same_call_again(app, client, auth, admin, io_worker, dispatcher):
    with app.app_context():
        held = claim("selftest", "retried")
        finish(
            held,
            JobStatus.FAILED,
            error="TransientError: flaky",
            failure_class=FailureClass.TRANSIENT,
            result={
                "call": {"task": "pipeline.selftest", "args": [], "kwargs": {"subject": "retried"}}
            },
        )
    auth.login(admin.email)
    csrf = token(client, "/admin/pipeline")
    response = client.post(
        f"/admin/pipeline/runs/{held.run_id}/retry",
        data={"csrf_token": csrf},
        follow_redirects=True,
    )
    assert "Sent selftest on retried again" in response.get_data(as_text=True)
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with app.app_context():
            statuses = db.session.scalars(
                sa.select(JobRun.status).where(JobRun.subject == "retried").order_by(JobRun.id)
            ).all()
        if statuses[-1] is JobStatus.SUCCEEDED:
            break
        time.sleep(0.2)
    assert statuses == [JobStatus.FAILED, JobStatus.SUCCEEDED]


def test_admin_edits_the_lexicon_and_the_prompt_follows(app, client, auth, admin):
    from pipeline.gemini.lexicon import glossary
    from ra_app.core.models import LexiconTerm

    auth.login(admin.email)
    csrf = token(client, "/admin/lexicon")
    added = client.post(
        "/admin/lexicon",
        data={"csrf_token": csrf, "term": "deadline", "kind": "keep_english", "approved": "y"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Saved “deadline”" in added and 'data-term="deadline"' in added
    client.post("/admin/lexicon", data={"csrf_token": csrf, "term": "Vincom", "kind": "vocabulary"})
    with app.app_context():
        before = glossary()
        vincom = db.session.scalar(sa.select(LexiconTerm).where(LexiconTerm.term == "Vincom"))
        assert not vincom.approved
        vincom_id = vincom.id
    approve = client.post(
        "/admin/lexicon",
        data={
            "csrf_token": csrf,
            "term_id": vincom_id,
            "term": "Vincom",
            "kind": "vocabulary",
            "approved": "y",
            "action": "save",
        },
        follow_redirects=True,
    )
    assert approve.status_code == 200
    with app.app_context():
        after = glossary()
    assert before != after  # an approved term changes what the prompt is given
    dup = client.post(
        "/admin/lexicon",
        data={"csrf_token": csrf, "term": "DEADLINE", "kind": "vocabulary"},
        follow_redirects=True,
    )
    assert "already in the lexicon" in dup.get_data(as_text=True)
    client.post(
        "/admin/lexicon", data={"csrf_token": csrf, "term_id": vincom_id, "action": "delete"}
    )
    with app.app_context():
        assert db.session.get(LexiconTerm, vincom_id) is None
