"""`flask doctor` and /readyz/queues: a healthy installation (a real worker process on every
queue, a working Gemini key, a fresh backup) passes; each failure the doctor claims to
detect is found, named, and comes with what to do."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa
from flask_migrate import upgrade

from config import celery_settings
from pipeline.doctor import doctor_command
from ra_app.core.models import OutboxMessage, WorkerSeen
from ra_app.core.outbox import enqueue
from ra_app.extensions import db

from .conftest import REDIS_URL, make_app
from .fake_gemini import KEY_1, KEY_2, candidate_reply, invalid_key_reply
from .fake_gemini import fake as fake  # noqa: F401  (fixtures)
from .fake_gemini import gemini_app as gemini_app  # noqa: F401
from .workers import wait_for, worker_process
from .ytserver import no_internet as no_internet  # noqa: F401


def doctor(app, *args: str) -> tuple[int, dict[str, dict]]:
    result = app.test_cli_runner().invoke(doctor_command, ["--json", *args])
    body = json.loads(result.output)
    assert body["ok"] == (result.exit_code == 0), result.output
    return result.exit_code, {f["name"]: f for f in body["findings"]}


def failures(found: dict[str, dict]) -> set[str]:
    return {name for name, f in found.items() if f["level"] == "FAIL"}


def test_a_healthy_installation_passes(
    gemini_app, fake, celery_app, database_url_for_session, tmp_path
):
    app = gemini_app
    app.config.update(DOCTOR_MIN_FREE_GB=0.001)
    fake.responder = lambda request: candidate_reply("OK")
    assert app.test_cli_runner().invoke(args=["backup"]).exit_code == 0
    with worker_process(
        celery_app,
        database_url_for_session,
        REDIS_URL,
        app.config["DATA_ROOT"],
        queues=("io", "cpu", "llm", "gpu", "gpu_denoise"),
    ) as worker:
        with app.app_context():
            wait_for(lambda: db.session.get(WorkerSeen, worker.worker_name), timeout=30)
            db.session.remove()
        code, found = doctor(app, "--queues", "io,cpu,llm")
        answer = app.test_client().get("/readyz/queues")
    assert code == 0 and not failures(found), found
    assert {f["level"] for f in found.values()} == {"ok"}, found
    for queue in ("io", "cpu", "llm", "gpu", "gpu_denoise"):
        assert worker.worker_name in found[f"queue {queue}"]["detail"]
    assert found["gemini keys"]["detail"] == "key 1 (…0001) ok, key 2 (…0002) ok"
    assert KEY_1 not in json.dumps(found) and KEY_2 not in json.dumps(found)
    assert answer.status_code == 200
    assert answer.get_json()["queues"]["gpu"] == {
        "ok": True,
        "consumers": 1,
        "waiting": 0,
        "broker_counted": True,
        "last_finished": None,
    }
    assert worker.worker_name not in answer.get_data(as_text=True)


def test_work_waiting_on_a_queue_nobody_consumes_is_a_failure(app, celery_app):
    app.config.update(DOCTOR_MIN_FREE_GB=0.001)
    celery_app.send_task("pipeline.align", args=["x"])  # routed to gpu: in Redis, no consumer
    with app.app_context():
        enqueue("pipeline.align", ["y"])  # and one the dispatcher has not sent yet
        db.session.commit()
    code, found = doctor(app, "--queues", "io")
    assert code == 1 and "queue gpu" in failures(found)
    assert found["queue gpu"]["detail"].startswith("2 task(s) waiting and no worker consumes it")
    assert found["queue gpu"]["action"].endswith("celery -A celery_worker worker -Q gpu")
    assert found["queue cpu"]["level"] == "warn"  # nobody consumes it, but nothing waits
    answer = app.test_client().get("/readyz/queues")
    assert answer.status_code == 503
    assert answer.get_json()["queues"]["gpu"]["waiting"] == 2


def test_an_outbox_nobody_sends_means_no_dispatcher(app):
    with app.app_context():
        enqueue("pipeline.segment", ["z"])
        db.session.commit()
        db.session.execute(
            sa.update(OutboxMessage).values(created_at=sa.func.now() - timedelta(minutes=10))
        )
        db.session.commit()
    code, found = doctor(app, "--queues", "io")
    assert "dispatcher" in failures(found)
    assert "1 message(s) unsent" in found["dispatcher"]["detail"]
    assert "flask pipeline dispatch" in found["dispatcher"]["action"]


def test_keys_that_do_not_work_fail_and_stay_hidden(gemini_app, fake):
    fake.key_replies = {KEY_1: invalid_key_reply(), KEY_2: invalid_key_reply()}
    code, found = doctor(gemini_app)  # no queues: the operator's run checks the keys
    assert "gemini keys" in failures(found)
    assert "flask gemini check-keys" in found["gemini keys"]["action"]
    assert KEY_1 not in json.dumps(found)
    gemini_app.config.update(GEMINI_API_KEYS=[])
    assert doctor(gemini_app)[1]["gemini keys"]["detail"] == "no key configured"
    assert "gemini keys" not in doctor(gemini_app, "--queues", "io,cpu")[1]  # not this host's


def test_a_gpu_host_checks_its_environments_and_model_folders(app, tmp_path):
    models = tmp_path / "models"
    snapshot = models / "models--nguyenvulebinh--wav2vec2-base-vi" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors.incomplete").write_bytes(b"half")  # a sync cut short
    denoise = tmp_path / "df3"
    denoise.mkdir()
    (denoise / "config.ini").write_text("[df]\n")
    app.config.update(ALIGN_MODEL_DIR=str(models), DENOISE_MODEL_DIR=str(denoise))
    code, found = doctor(app, "--queues", "gpu,gpu_denoise")
    assert code == 1
    assert {"whisperx", "deepfilternet", "alignment models", "denoise model"} <= failures(found)
    assert "not importable" in found["whisperx"]["detail"]
    assert "requirements-gpu-align.txt" in found["whisperx"]["action"]
    assert "vi: nguyenvulebinh/wav2vec2-base-vi" in found["alignment models"]["detail"]
    assert "en: WAV2VEC2_ASR_BASE_960H" in found["alignment models"]["detail"]
    assert "half-downloaded" in found["alignment models"]["detail"]

    (snapshot / "model.safetensors.incomplete").rename(snapshot / "model.safetensors")
    (models / "hub" / "checkpoints").mkdir(parents=True)
    (models / "hub" / "checkpoints" / "wav2vec2_fairseq_base_ls960_asr_ls960.pth").write_bytes(b"w")
    (denoise / "checkpoints").mkdir()
    (denoise / "checkpoints" / "model_120.ckpt.best").write_bytes(b"w")
    found = doctor(app, "--queues", "gpu,gpu_denoise")[1]
    assert found["alignment models"]["level"] == "ok", found["alignment models"]
    assert found["denoise model"]["level"] == "ok", found["denoise model"]
    assert "whisperx" not in doctor(app, "--queues", "io")[1]  # only GPU hosts check it
    assert "deepfilternet" not in doctor(app, "--queues", "gpu")[1]  # nor the other GPU queue's


def test_low_disk_and_old_or_missing_backups_fail(app, tmp_path):
    app.config.update(DOCTOR_MIN_FREE_GB=10**9, MEDIA_CACHE_DIR=str(tmp_path / "cache"))
    code, found = doctor(app, "--queues", "io")
    assert {"disk DATA_ROOT", "disk MEDIA_CACHE_DIR", "backups"} <= failures(found)
    assert "DOCTOR_MIN_FREE_GB" in found["disk DATA_ROOT"]["action"]
    assert found["backups"]["detail"].startswith("no backup under ")

    assert app.test_cli_runner().invoke(args=["backup"]).exit_code == 0
    app.config.update(DOCTOR_MIN_FREE_GB=0.001)
    assert doctor(app, "--queues", "io")[1]["backups"]["level"] == "ok"
    app.config.update(DOCTOR_BACKUP_MAX_AGE_HOURS=0)
    found = doctor(app, "--queues", "io")[1]
    assert found["backups"]["level"] == "FAIL" and "older than 0 h" in found["backups"]["detail"]
    assert "review-backup.timer" in found["backups"]["action"]


def test_the_shared_pieces_fail_with_what_to_do(database_url_for_session, empty_database, tmp_path):
    broken_broker = make_app(
        database_url_for_session, tmp_path / "a", CELERY=celery_settings("redis://127.0.0.1:1/0")
    )
    code, found = doctor(broken_broker, "--queues", "io")
    assert "broker" in failures(found) and "redis-cli" in found["broker"]["action"]
    assert found["queue gpu"]["detail"].endswith("(the broker did not answer: outbox only)")

    no_database = make_app(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/no_such_db", tmp_path / "b"
    )
    code, found = doctor(no_database, "--queues", "io")
    assert code == 1 and set(found) == {"database", "migrations", "broker", "storage"}
    assert "pg_isready" in found["database"]["action"]

    behind = make_app(empty_database(), tmp_path / "c")
    with behind.app_context():
        upgrade(revision="c3f5a8d2e1b4")
        db.engine.dispose()
    code, found = doctor(behind, "--queues", "io")
    assert "migrations" in failures(found)
    assert found["migrations"]["action"] == "run `flask db upgrade` once, from one host"
    assert set(found) == {"database", "migrations", "broker", "storage"}  # and nothing crashed
