"""`flask sync` with real DVC: machine A (a Postgres database and its data folder) pushed to a
local-folder remote and to an S3 remote (moto's server), restored on an empty machine B and
compared table by table and file by file; two machines changing one row converge; a push
killed halfway is finished by the next cycle."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from pipeline.backup import table_checksums
from ra_app.core.accounts import create_account
from ra_app.core.models import LexiconTerm, Role, Sample
from ra_app.extensions import db

from .conftest import PASSWORD, make_app
from .test_labelstudio import AUDIO, FIXTURES
from .test_storage import new_bucket
from .workers import ROOT, wait_for, web_env


def files_of(root: Path, folder: str) -> dict[str, str]:
    """Every file under root/folder with its sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }


def machine(empty_database, tmp_path, name: str, remote: str, **settings):
    data = tmp_path / name
    app = make_app(
        empty_database(), data, SYNC_REMOTE=remote, SYNC_MACHINE=name, BACKUP_DIR=None, **settings
    )
    with app.app_context():
        upgrade()
    return app


def sync(app, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["sync", *args])
    assert result.exit_code == 0, result.output
    return result.output


def populate(app) -> None:
    """Real work: Label Studio's projects imported (samples with their media, revisions by
    people and by a model), and a reviewer."""
    with app.app_context():
        create_account("lan.nguyen@example.com", PASSWORD, Role.REVIEWER)
        db.session.commit()
    result = app.test_cli_runner().invoke(
        args=[
            "import",
            "labelstudio",
            str(FIXTURES / "projectA.snapshot.json"),
            str(FIXTURES / "projectB.snapshot.json"),
            "--audio-root",
            str(AUDIO),
        ]
    )
    assert result.exit_code == 0, result.output


def checksums(app) -> dict:
    with app.app_context():
        return table_checksums()


@pytest.fixture
def s3_remote(s3_endpoint):
    bucket = new_bucket(s3_endpoint).bucket
    return f"s3://{bucket}/corpus", {
        "S3_ENDPOINT": s3_endpoint,
        "S3_ACCESS_KEY": "k",
        "S3_SECRET_KEY": "s",
    }


@pytest.mark.parametrize("remote_kind", ["folder", "s3"])
def test_a_new_machine_restored_from_the_remote_is_identical(
    empty_database, tmp_path, remote_kind, request
):
    if remote_kind == "s3":
        remote, settings = request.getfixturevalue("s3_remote")
    else:
        remote, settings = str(tmp_path / "remote"), {}
    a = machine(empty_database, tmp_path, "a", remote, **settings)
    populate(a)
    # A frozen export snapshot's folder (what `flask export` leaves; its content is
    # tests/test_export.py's business): versioned like the rest.
    snapshot = Path(a.config["DATA_ROOT"]) / "exports" / "20261130T090000Z-abc123"
    (snapshot / "data").mkdir(parents=True)
    (snapshot / "data" / "train.jsonl").write_text('{"text": "Xin chào"}\n')
    (snapshot / "export.json").write_text('{"id": "20261130T090000Z-abc123"}\n')
    out = sync(a, "--once")
    assert "pushed samples, db_sync, exports" in out
    assert "remote: up to date" in sync(a, "--status")

    b = machine(empty_database, tmp_path, "b", remote, **settings)
    restored = sync(b, "--force-restore")
    assert "restored a" in restored and "every table's row checksum matches a's" in restored
    assert checksums(b) == checksums(a)
    root_a, root_b = Path(a.config["DATA_ROOT"]), Path(b.config["DATA_ROOT"])
    assert files_of(root_b, "samples") == files_of(root_a, "samples")
    assert len(files_of(root_a, "samples")) == 12  # 4 samples: master, rendition, peaks
    assert files_of(root_b, "exports") == files_of(root_a, "exports") != {}
    with b.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Sample.id))) == 4


def test_two_machines_converge_under_last_write_wins(empty_database, tmp_path):
    remote = str(tmp_path / "remote")
    a = machine(empty_database, tmp_path, "a", remote)
    populate(a)
    sync(a, "--once")
    b = machine(empty_database, tmp_path, "b", remote)
    sync(b, "--force-restore")

    def retitle(app, title_was, title):
        with app.app_context():
            sample = db.session.scalar(sa.select(Sample).where(Sample.title == title_was))
            sample.title = title
            db.session.commit()

    retitle(b, "Cà phê với team", "older change on B")  # B first: the older write
    time.sleep(0.05)
    retitle(a, "Cà phê với team", "newer change on A")
    retitle(b, "Chuyến đi Đà Lạt", "only B changed this one")
    assert "pulled b" not in sync(a, "--once")  # B has not pushed yet
    out = sync(b, "--once")
    assert "pulled a" in out
    out = sync(a, "--once")
    assert "pulled b" in out
    for app in (a, b):
        with app.app_context():
            titles = set(db.session.scalars(sa.select(Sample.title)))
        assert {"newer change on A", "only B changed this one"} <= titles, app.config[
            "SYNC_MACHINE"
        ]
        assert "older change on B" not in titles
    sync(b, "--once")
    assert checksums(a)["samples"] == checksums(b)["samples"]
    assert checksums(a)["transcript_revisions"] == checksums(b)["transcript_revisions"]

    # A row made on A after B's last pull, then a push from B: merging B's backup into A
    # keeps it (B never saw it; that is not a deletion), and B gets it from A's next push.
    with a.app_context():
        db.session.add(LexiconTerm(term="deadline", kind="keep_english", note="giữ nguyên"))
        db.session.commit()
    time.sleep(0.05)
    pushed = sync(b, "--push")
    assert "pushed" in pushed and "pulled" not in pushed
    assert "pulled b" in sync(a, "--pull")
    assert "pushed" in sync(a, "--push")
    sync(b, "--pull")
    for app in (a, b):
        with app.app_context():
            assert db.session.scalar(sa.select(LexiconTerm.term)) == "deadline"


def test_a_push_killed_halfway_is_finished_by_the_next_cycle(empty_database, tmp_path, s3_remote):
    remote, settings = s3_remote
    a = machine(empty_database, tmp_path, "a", remote, **settings)
    populate(a)
    # Enough media that the push takes a while: 120 files of 1 MiB.
    bulk = Path(a.config["DATA_ROOT"]) / "samples" / "bulk"
    bulk.mkdir(parents=True)
    for n in range(120):
        (bulk / f"part-{n:03d}.bin").write_bytes(os.urandom(1024 * 1024))
    env = web_env(
        a.config["SQLALCHEMY_DATABASE_URI"],
        tmp_path,
        0,
        DATA_ROOT=a.config["DATA_ROOT"],
        SYNC_REMOTE=remote,
        SYNC_MACHINE="a",
        **settings,
    )
    (tmp_path / "web-metrics").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "ra_app", "sync", "--once"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=settings["S3_ENDPOINT"],
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    )
    bucket = remote.removeprefix("s3://").split("/")[0]

    def keys():
        listing = s3.list_objects_v2(Bucket=bucket, Prefix="corpus/")
        return [o["Key"] for o in listing.get("Contents", [])]

    def pushing():
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]  # still running
        return len([k for k in keys() if "/files/md5/" in k]) >= 5

    wait_for(pushing, timeout=120, interval=0.1)
    os.killpg(proc.pid, 9)
    proc.wait()
    halfway = keys()
    assert not any("review-sync/a.json" in k for k in halfway), "no manifest for half a push"
    assert len([k for k in halfway if "/files/md5/" in k]) < 120

    out = sync(a, "--once")
    assert "pushed samples" in out
    assert any(k.endswith("review-sync/a.json") for k in keys())
    assert "remote: up to date" in sync(a, "--status")
    b = machine(empty_database, tmp_path, "b", remote, **settings)
    assert "every table's row checksum matches" in sync(b, "--force-restore")
    root_a, root_b = Path(a.config["DATA_ROOT"]), Path(b.config["DATA_ROOT"])
    assert files_of(root_b, "samples") == files_of(root_a, "samples")


def test_without_a_remote_sync_says_what_to_set(app, runner):
    result = runner.invoke(args=["sync", "--once"])
    assert result.exit_code == 1 and "SYNC_REMOTE is not set" in result.output
