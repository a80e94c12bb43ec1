"""Label Studio migration: its own exports (tests/data/labelstudio, written by Label Studio
1.23 and copied byte for byte from the shared fixtures) imported into a real Postgres with
the real ingest, checked against the files, imported again without change, and exported
and imported back."""

from __future__ import annotations

import filecmp
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.labelstudio.exports import Names, read_export
from ra_app.core.accounts import create_account
from ra_app.core.models import (
    ImportedItem,
    Origin,
    Role,
    Sample,
    TranscriptRevision,
    TranslationRevision,
)
from ra_app.core.revisions import latest_revisions, rows_of
from ra_app.core.states import ProcessingState
from ra_app.extensions import db

from .conftest import PASSWORD, make_app

FIXTURES = Path(__file__).parent / "data" / "labelstudio"
SHARED = Path(__file__).parents[2] / "shared" / "fixtures" / "labelstudio"
AUDIO = FIXTURES / "audio"
EXPORTS = sorted(p.name for p in FIXTURES.glob("project*.*") if p.suffix != ".xml")
TITLES = {
    "cs01": "Review laptop mới",
    "cs02": "Cà phê với team",
    "cs03": "Ghi chú cuộc họp",
    "cs04": "Chuyến đi Đà Lạt",
}


def raw_regions(annotation: dict) -> list[dict]:
    """The regions of a full-export annotation, straight from the file: what the
    revision must hold."""
    regions: dict[str, dict] = {}
    for item in annotation["result"]:
        region = regions.setdefault(item["id"], {"start": item["value"]["start"]})
        region["end"] = item["value"]["end"]
        if item["from_name"] == "transcription":
            region["text"] = item["value"]["text"][0]
        if item["from_name"] == "translation":
            region["translation"] = item["value"]["text"][0]
        if item["from_name"] == "lang":
            region["label"] = item["value"]["labels"][0]
    return sorted(regions.values(), key=lambda r: r["start"])


def snapshot_annotations() -> dict[str, dict]:
    """Every annotation of both snapshot exports by id, with its task's sample id."""
    found = {}
    for name in ("projectA.snapshot.json", "projectB.snapshot.json"):
        for task in json.loads((FIXTURES / name).read_text()):
            for annotation in task["annotations"]:
                found[str(annotation["id"])] = {**annotation, "sample": task["data"]["sample_id"]}
    return found


def import_ls(runner, *args):
    result = runner.invoke(args=["import", "labelstudio", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def table_counts() -> dict[str, int]:
    return {
        t.name: db.session.scalar(sa.select(sa.func.count()).select_from(t))
        for t in db.metadata.sorted_tables
    }


def sample_by_title(title: str) -> Sample:
    return db.session.scalar(sa.select(Sample).where(Sample.title == title))


def revisions(model, sample: Sample):
    return db.session.scalars(
        sa.select(model).where(model.sample_id == sample.id).order_by(model.version)
    ).all()


def test_the_fixtures_are_the_shared_files_unchanged():
    if not SHARED.is_dir():
        pytest.skip("no shared fixtures folder beside this checkout")
    compared = filecmp.dircmp(SHARED, FIXTURES)
    assert not compared.left_only and not compared.right_only and not compared.diff_files
    audio = filecmp.dircmp(SHARED / "audio", AUDIO)
    assert not audio.left_only and not audio.diff_files


def test_every_export_format_reads_the_same_work():
    """JSON, snapshot, JSON_MIN and CSV of one project: the same tasks, annotations,
    authors and region times; only the min formats lose the texts they cannot place."""
    names = Names.from_config(FIXTURES / "projectB.config.xml")
    assert names == Names("lang", "transcription", "translation")
    assert Names.from_config(FIXTURES / "projectA.config.xml").transcription == "transcription"
    for project in ("projectA", "projectB"):
        full = read_export(FIXTURES / f"{project}.json")
        snapshot = read_export(FIXTURES / f"{project}.snapshot.json")
        minimal = read_export(FIXTURES / f"{project}.min.json")
        table = read_export(FIXTURES / f"{project}.csv")
        assert [t.task_id for t in full] == [t.task_id for t in snapshot]
        assert (
            {t.task_id for t in minimal} == {t.task_id for t in full} == {t.task_id for t in table}
        )
        for task in full:
            kept = [a for a in task.annotations if not a.cancelled]
            for other in (minimal, table):
                twin = next(t for t in other if t.task_id == task.task_id)
                assert twin.audio == task.audio
                assert sorted(a.item_id for a in twin.annotations) == sorted(
                    a.item_id for a in kept
                )
                for annotation in twin.annotations:
                    same = next(a for a in kept if a.item_id == annotation.item_id)
                    assert annotation.version == same.version
                    assert annotation.author.ls_id == same.author.ls_id
                    assert [(r.start, r.end, r.label) for r in annotation.regions] == [
                        (r.start, r.end, r.label) for r in same.regions
                    ]
    # The UI export lists task 4's prediction by id; the snapshot carries its body.
    task4 = next(t for t in read_export(FIXTURES / "projectA.json") if t.task_id == "4")
    assert task4.predictions_not_included == 1 and task4.annotations == []
    task4 = next(t for t in read_export(FIXTURES / "projectA.snapshot.json") if t.task_id == "4")
    [prediction] = task4.annotations
    assert prediction.item == "prediction" and prediction.model_version == "gemini-draft"
    assert prediction.regions[0].text == "Cuối tuần này mình sẽ đi Đà Lạt"
    # Annotation 3 has 4 regions and 3 transcriptions: the min format cannot say where.
    task2 = next(t for t in read_export(FIXTURES / "projectA.min.json") if t.task_id == "2")
    [third] = [a for a in task2.annotations if a.item_id == "3"]
    assert "3 transcription texts for 4 regions" in third.problems[0]
    assert all(r.text is None for r in third.regions)


def test_snapshot_import_brings_every_annotation_with_its_author_times_and_texts(
    app, runner, make_user
):
    lan = make_user("lan.nguyen@example.com", Role.REVIEWER)  # Minh has no account here
    out = import_ls(
        runner,
        FIXTURES / "projectA.snapshot.json",
        FIXTURES / "projectB.snapshot.json",
        "--audio-root",
        AUDIO,
    )
    assert "6 tasks: 4 new samples, 2 already here" in out
    assert "6 annotations and 1 predictions imported" in out
    assert "1 cancelled" in out
    expected = snapshot_annotations()
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Sample.id))) == 4
        for item in db.session.scalars(
            sa.select(ImportedItem).where(ImportedItem.item == "annotation")
        ):
            source = expected[item.item_id]
            transcript = db.session.get(TranscriptRevision, item.transcript_revision_id)
            assert transcript.sample.title == TITLES[source["sample"]]
            assert transcript.origin is Origin.LABEL_STUDIO
            assert item.item_version == source["updated_at"]
            if source["completed_by"]["email"] == lan.email:
                assert (transcript.author_id, transcript.author_name) == (lan.id, None)
            else:
                assert transcript.author_id is None and transcript.author_name == "Minh Trần"
            regions = raw_regions(source)
            assert [s["text"] for s in transcript.sentences] == [r.get("text", "") for r in regions]
            assert [s["label"] for s in transcript.sentences] == [r["label"] for r in regions]
            for sentence, region in zip(transcript.sentences, regions, strict=True):
                assert sentence["start"] == pytest.approx(region["start"], abs=5e-4)
                assert sentence["end"] == pytest.approx(region["end"], abs=5e-4)
            translation = item.translation_revision_id and db.session.get(
                TranslationRevision, item.translation_revision_id
            )
            if any("translation" in r for r in regions):
                assert translation.transcript_revision_id == transcript.id
                assert [t["translation"] for t in translation.sentences] == [
                    r.get("translation", "") for r in regions
                ]
            else:
                assert translation is None

        # cs02: two annotations in project A, one in B; the newest (B's) is current.
        coffee = sample_by_title(TITLES["cs02"])
        assert [r.author_name or r.author.email for r in revisions(TranscriptRevision, coffee)] == [
            "Minh Trần",
            "lan.nguyen@example.com",
            "Minh Trần",
        ]
        rows = rows_of(*latest_revisions(coffee.id))
        assert rows[1]["translation"] == "Chúng tôi đã nói về hạn chót của dự án mới."
        # cs04: the prediction is the machine draft, Lan's project B annotation the review.
        trip = sample_by_title(TITLES["cs04"])
        draft, review = revisions(TranscriptRevision, trip)
        assert (draft.origin, draft.model_name) == (Origin.IMPORTED, "Label Studio: gemini-draft")
        assert draft.sentences[0]["text"] == "Cuối tuần này mình sẽ đi Đà Lạt"
        assert review.author_id == lan.id
        assert review.sentences[0]["text"] == "Cuối tuần này mình sẽ đi Đà Lạt."
        states = set(db.session.scalars(sa.select(Sample.processing_state)))
        assert states == {ProcessingState.REVIEWED}
        before = table_counts()

    again = import_ls(
        runner,
        FIXTURES / "projectA.snapshot.json",
        FIXTURES / "projectB.snapshot.json",
        "--audio-root",
        AUDIO,
    )
    assert "0 new samples, 6 already here" in again
    assert "0 annotations and 0 predictions imported, 7 already imported" in again
    with app.app_context():
        assert table_counts() == before


def test_every_format_imports_and_a_second_format_of_the_same_export_adds_nothing(
    app, runner, make_user
):
    make_user("bench@example.com", Role.REVIEWER)
    users = ["--user", "1=bench@example.com", "--user", "2=lan.nguyen@example.com"]
    config = ["--config", FIXTURES / "projectA.config.xml"]
    out = import_ls(runner, FIXTURES / "projectA.json", "--audio-root", AUDIO, *users, *config)
    assert "4 tasks: 4 new samples" in out and "4 annotations and 0 predictions" in out
    assert "1 predictions are listed by id only" in out
    with app.app_context():
        bench = db.session.scalar(
            sa.select(TranscriptRevision).order_by(TranscriptRevision.created_at)
        )
        assert bench.author.email == "bench@example.com"
        lan = db.session.scalars(
            sa.select(TranscriptRevision).where(TranscriptRevision.author_name.is_not(None))
        ).all()
        assert [r.author_name for r in lan] == ["lan.nguyen@example.com"]  # no account here
        trip = sample_by_title(TITLES["cs04"])
        assert trip.processing_state is ProcessingState.INGESTED  # waits for transcription
        before = table_counts()
    for name in EXPORTS:
        if name.startswith("projectA"):
            out = import_ls(runner, FIXTURES / name, "--audio-root", AUDIO, *users)
            if name.endswith(".snapshot.json"):
                assert "0 annotations and 1 predictions imported" in out
            else:
                assert "0 annotations and 0 predictions imported" in out, name
    with app.app_context():
        after = table_counts()
        # Only the snapshot's prediction is new: its text becomes cs04's machine draft.
        assert after["transcript_revisions"] == before["transcript_revisions"] + 1
        assert after["imported_items"] == before["imported_items"] + 1
        assert sample_by_title(TITLES["cs04"]).processing_state is ProcessingState.TRANSCRIBED
    # Project B's min and CSV exports on an empty installation: what can be placed is.
    out = import_ls(runner, FIXTURES / "projectB.csv", "--audio-root", AUDIO)
    assert "2 tasks: 0 new samples, 2 already here" in out
    assert "3 translation texts for 4 regions" in out


@pytest.mark.parametrize("name", EXPORTS)
def test_each_export_file_imports_on_its_own(app, runner, name):
    out = import_ls(runner, FIXTURES / name, "--audio-root", AUDIO)
    with app.app_context():
        titles = set(db.session.scalars(sa.select(Sample.title)))
        tasks = read_export(FIXTURES / name)
        assert titles == {t.title for t in tasks}
        imported = db.session.scalar(sa.select(sa.func.count(ImportedItem.id)))
        readable = [
            a
            for t in tasks
            for a in t.annotations
            if not a.cancelled and any(r.text is not None for r in a.regions)
        ]
        assert imported == len(readable), out


def test_export_then_import_gives_back_the_same_work(app, runner, make_user, tmp_path):
    make_user("lan.nguyen@example.com", Role.REVIEWER)
    import_ls(
        runner,
        FIXTURES / "projectA.snapshot.json",
        FIXTURES / "projectB.snapshot.json",
        "--audio-root",
        AUDIO,
    )
    out_dir = tmp_path / "to-label-studio"
    result = runner.invoke(args=["export", "labelstudio", str(out_dir)])
    assert result.exit_code == 0, result.output
    assert "4 tasks written" in result.output and "4 audio files copied" in result.output
    tasks = json.loads((out_dir / "tasks.json").read_text())
    assert {t["data"]["title"] for t in tasks} == set(TITLES.values())
    lan_task = next(t for t in tasks if t["data"]["title"] == TITLES["cs04"])
    assert lan_task["annotations"][0]["completed_by"] == {"email": "lan.nguyen@example.com"}
    assert lan_task["predictions"][0]["model_version"] == "Label Studio: gemini-draft"

    def current_work(application):
        with application.app_context():
            work = {}
            for sample in db.session.scalars(sa.select(Sample)):
                transcript, _ = latest_revisions(sample.id)
                rows = rows_of(*latest_revisions(sample.id))
                work[sample.title] = (
                    transcript.written_by,
                    [(r["start"], r["end"], r["text"], r["translation"]) for r in rows],
                )
            return work

    source = current_work(app)
    other = make_app(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other-data")
    with other.app_context():
        db.create_all()
    other_runner = other.test_cli_runner()
    with other.app_context():
        create_account("lan.nguyen@example.com", PASSWORD, Role.REVIEWER)
    out = import_ls(other_runner, out_dir / "tasks.json", "--audio-root", out_dir)
    assert "4 tasks: 4 new samples" in out and "4 annotations and 1 predictions" in out
    copied = current_work(other)
    assert copied.keys() == source.keys()
    for title, (author, rows) in source.items():
        copied_author, copied_rows = copied[title]
        assert copied_rows == rows, title
        assert copied_author == author, title  # an e-mail stays a user; a name stays text


def test_audio_is_fetched_from_the_tasks_urls_and_a_path_outside_the_root_is_refused(
    app, runner, tmp_path
):
    handler = partial(SimpleHTTPRequestHandler, directory=str(AUDIO))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/"
        text = (FIXTURES / "projectA.min.json").read_text()
        moved = tmp_path / "projectA.min.json"  # the export as an audio server moved it
        moved.write_text(text.replace("http:\\/\\/127.0.0.1:8086\\/", base.replace("/", "\\/")))
        tasks = json.loads(moved.read_text())
        tasks[-1]["audio"] = "/data/local-files/?d=../projectA.json"
        moved.write_text(json.dumps(tasks))
        out = import_ls(runner, moved, "--audio-root", AUDIO)
    finally:
        server.shutdown()
        server.server_close()
    assert "4 tasks: 3 new samples" in out
    assert "task 3: /data/local-files/?d=audio/cs03_meeting_notes.wav: not found" not in out
    assert "task 4: /data/local-files/?d=../projectA.json: not found" in out
    with app.app_context():
        assert set(db.session.scalars(sa.select(Sample.title))) == {
            TITLES["cs01"],
            TITLES["cs02"],
            TITLES["cs03"],
        }


def test_two_imports_at_once_write_each_annotation_once(app, tmp_path):
    errors = []

    def run():
        try:
            result = app.test_cli_runner().invoke(
                args=[
                    "import",
                    "labelstudio",
                    str(FIXTURES / "projectB.snapshot.json"),
                    "--audio-root",
                    str(AUDIO),
                ]
            )
            assert result.exit_code == 0, result.output
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Sample.id))) == 2
        assert db.session.scalar(sa.select(sa.func.count(ImportedItem.id))) == 2
        assert db.session.scalar(sa.select(sa.func.count(TranscriptRevision.id))) == 2
        assert db.session.scalar(sa.select(sa.func.count(TranslationRevision.id))) == 2


def test_an_unreadable_export_is_refused_with_its_name(runner, tmp_path):
    bad = tmp_path / "export.json"
    bad.write_text('{"not": "a list"}')
    result = runner.invoke(args=["import", "labelstudio", str(bad)])
    assert result.exit_code == 1
    assert "export.json: a Label Studio export is a list of tasks" in result.output
    config = tmp_path / "config.xml"
    config.write_text("<View><Audio name='a' value='$a'/></View>")
    result = runner.invoke(args=["import", "labelstudio", str(bad), "--config", str(config)])
    assert "config.xml: needs a Labels control and a per-region TextArea" in result.output
