"""The demo batch of the embedded mode: three short code-switched recordings the product
speaks itself (espeak-ng, Vietnamese and English voices), each with a machine draft that
has the kind of mistakes reviewers fix, assigned to the demo reviewer — one task of each
type, so a newcomer is reviewing within a minute (`flask demo`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
import wave
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from ra_app.core.accounts import create_account, find_user
from ra_app.core.audio import FFMPEG, SAMPLE_RATE
from ra_app.core.models import (
    Batch,
    Origin,
    Role,
    Sample,
    Segment,
    SourceKind,
    TaskType,
    User,
)
from ra_app.core.revisions import (
    latest_revisions,
    rows_inside,
    rows_of,
    write_revisions,
)
from ra_app.core.states import ProcessingState, transition
from ra_app.core.tasks import create_tasks
from ra_app.extensions import db

from .stages.ingest import Recording, ingest

GAP_S = 0.6
RATE = SAMPLE_RATE

# (voice, what is said, the machine draft's text or None if right, translation, flags)
LAPTOP = [
    (
        "vi",
        "Xin chào các bạn, hôm nay mình sẽ review cái laptop này.",
        "Xin chào các bạn, hôm nay mình sẽ ri viu cái láp tóp này.",
        "",
        [],
    ),
    (
        "vi",
        "Nói chung là performance khá ổn, pin dùng được cả ngày.",
        "Nói chung là pơ phóc mần khá ổn, pin dùng được cả ngày.",
        "",
        [],
    ),
    ("en", "The screen is bright and the keyboard feels great.", None, "", []),
    (
        "vi",
        "Nhưng mà giá hơi cao so với các bạn sinh viên.",
        "Nhưng mà giá hơi cao so với các bạn sinh viên",
        "",
        [],
    ),
    (
        "vi",
        "Nếu thấy video hay thì nhớ subscribe nhé.",
        "Nếu thấy video hay thì nhớ sub cờ rai nhé.",
        "",
        [],
    ),
]
MEETING = [
    (
        "vi",
        "Deadline của project là thứ sáu tuần này.",
        None,
        "Hạn chót của dự án là thứ sáu tuần này.",
        [],
    ),
    (
        "vi",
        "Anh ấy đang đi meeting với khách hàng.",
        None,
        "Anh ấy đang đi meeting với khách hàng.",
        ["english_untranslated: meeting"],
    ),
    (
        "en",
        "Let's check the report before lunch.",
        None,
        "Hãy kiểm tra báo cáo trước bữa trưa.",
        [],
    ),
    ("vi", "Team mình cần thêm hai người nữa.", None, "", ["empty_translation"]),
]
PODCAST = [
    (
        "vi",
        "Chào mừng các bạn quay trở lại với podcast của tụi mình.",
        None,
        "Chào mừng các bạn quay trở lại với chương trình của chúng tôi.",
        [],
    ),
    (
        "vi",
        "Hôm nay chủ đề là làm việc remote ở Việt Nam.",
        None,
        "Hôm nay chủ đề là làm việc từ xa ở Việt Nam.",
        [],
    ),
    (
        "en",
        "Working from home has changed everything.",
        None,
        "Làm việc tại nhà đã thay đổi mọi thứ.",
        [],
    ),
    (
        "vi",
        "Nhiều công ty startup cho nhân viên làm hybrid.",
        None,
        "Nhiều công ty khởi nghiệp cho nhân viên làm việc kết hợp.",
        [],
    ),
    (
        "vi",
        "Mình thì thích đi cafe để làm việc cho có không khí.",
        None,
        "Tôi thì thích đi quán cà phê để làm việc cho có không khí.",
        [],
    ),
    (
        "en",
        "But the wifi is not always reliable.",
        None,
        "Nhưng wifi không phải lúc nào cũng ổn định.",
        [],
    ),
    (
        "vi",
        "Còn các bạn thì sao, comment cho tụi mình biết nhé.",
        None,
        "Còn các bạn thì sao, bình luận cho chúng tôi biết nhé.",
        [],
    ),
    (
        "vi",
        "Tuần sau tụi mình sẽ nói về chuyện học tiếng Anh.",
        None,
        "Tuần sau chúng tôi sẽ nói về chuyện học tiếng Anh.",
        [],
    ),
    ("en", "See you next week, bye bye.", None, "Hẹn gặp lại tuần sau, tạm biệt.", []),
]
DEMO = [
    ("Demo · review laptop", LAPTOP, TaskType.TRANSCRIPT_CORRECTION),
    ("Demo · họp team", MEETING, TaskType.TRANSLATION_REVIEW),
    ("Demo · podcast làm việc remote", PODCAST, TaskType.AUDIO_SEGMENTATION),
]
VOICES = {"vi": "vi", "en": "en-us"}


def speak(lines, folder: Path) -> tuple[Path, list[dict]]:
    """One WAV of the lines with pauses between them, and each line's start and end."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("the demo needs espeak-ng (scripts/setup.sh installs it)")
    parts, rows, clock = [], [], 0.3
    silence = b"\0\0" * int(RATE * GAP_S)
    for index, (voice, said, *_rest) in enumerate(lines):
        raw = folder / f"line{index}.wav"
        subprocess.run(
            ["espeak-ng", "-v", VOICES[voice], "-s", "150", "-w", str(raw), said],
            check=True,
            capture_output=True,
        )
        pcm = subprocess.run(
            [
                FFMPEG,
                "-v",
                "error",
                "-i",
                str(raw),
                "-ac",
                "1",
                "-ar",
                str(RATE),
                "-f",
                "s16le",
                "-",
            ],
            check=True,
            capture_output=True,
        ).stdout
        length = len(pcm) / 2 / RATE
        rows.append({"start": round(clock, 3), "end": round(clock + length, 3)})
        parts += [pcm, silence]
        clock += length + GAP_S
    path = folder / "speech.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(silence[: int(RATE * 0.3) * 2] + b"".join(parts))
    return path, rows


def machine_rows(lines, times) -> list[dict]:
    return [
        {**time, "text": draft or said, "translation": translation, "flags": list(flags)}
        for (_voice, said, draft, translation, flags), time in zip(lines, times, strict=True)
    ]


def demo_segments(sample: Sample, rows: list[dict]) -> None:
    """Segments as a first cut would make them: the second one too short to keep."""
    cuts = [rows[0]["start"], rows[2]["end"], rows[3]["end"], rows[-1]["end"]]
    transcript, translation = latest_revisions(sample.id)
    for position, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
        inside = rows_inside(rows, start, end)
        db.session.add(
            Segment(
                sample_id=sample.id,
                position=position,
                start_s=start,
                end_s=end,
                text=" ".join(r["text"] for r in inside),
                translation=" ".join(r["translation"] for r in inside),
                transcript_revision_id=transcript.id,
                translation_revision_id=translation.id,
            )
        )


def demo_batch(task_type: TaskType, reviewer: User) -> Batch:
    """The demo's batch of one task type (a batch holds one), so the admin pages show the
    demo's work as a real installation's."""
    name = f"Demo: {task_type.value.replace('_', ' ')}"
    batch = db.session.scalar(sa.select(Batch).where(Batch.name == name))
    if batch is None:
        batch = Batch(
            name=name,
            task_type=task_type,
            filters={"task_type": task_type.value},
            assignment_mode="even",
            weights={str(reviewer.id): 1.0},
        )
        db.session.add(batch)
        db.session.flush()
    return batch


def load_demo_batch(reviewer: User) -> list[str]:
    """Create the demo recordings and tasks once; returns a line per recording."""
    report = []
    for title, lines, task_type in DEMO:
        external_id = f"demo/{title}"
        exists = db.session.scalar(sa.select(Sample).where(Sample.title == title))
        if exists is not None:
            report.append(f"{title}: already there")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path, times = speak(lines, Path(tmp))
            outcome = ingest(
                Recording(
                    path=str(path), kind=SourceKind.FILE, external_id=external_id, title=title
                )
            )
        sample = db.session.get(Sample, uuid.UUID(outcome.sample_id))
        rows = machine_rows(lines, times)
        with_translation = task_type is not TaskType.TRANSCRIPT_CORRECTION
        write_revisions(
            sample,
            rows,
            origin=Origin.IMPORTED,
            with_translation=with_translation,
            model_name="demo script",
        )
        transition(sample, ProcessingState.TRANSCRIBED)
        if task_type is TaskType.AUDIO_SEGMENTATION:
            # The demo's third recording stands for one whose text was already reviewed.
            for state in (
                ProcessingState.IN_REVIEW,
                ProcessingState.REVIEWED,
                ProcessingState.SEGMENTED,
            ):
                transition(sample, state)
            db.session.flush()
            demo_segments(sample, rows_of(*latest_revisions(sample.id)))
        db.session.flush()
        create_tasks(
            sample, task_type, reviewer=reviewer, batch_id=demo_batch(task_type, reviewer).id
        )
        db.session.commit()  # the sample row was committed by ingest; tasks and text now
        report.append(f"{title}: {task_type.value.replace('_', ' ')} task for {reviewer.email}")
    return report


def embedded_mode() -> bool:
    config = current_app.config
    return (
        not config.get("PRODUCTION")
        and config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
        and bool(config["CELERY"]["task_always_eager"])
    )


DEMO_USERS = (
    ("admin@demo.local", "demo-admin-pass", Role.ADMIN),
    ("reviewer@demo.local", "demo-reviewer-pass", Role.REVIEWER),
)


@click.command("demo")
@click.option("--no-batch", is_flag=True, help="Only the accounts, not the demo recordings.")
@with_appcontext
def demo_command(no_batch: bool):
    """Create the demo accounts and the demo batch of the embedded mode (never in production)."""
    if not embedded_mode():
        raise click.ClickException(
            "the demo accounts and data are for the embedded mode only (SQLite, tasks "
            "in-process); this installation has its own database or broker"
        )
    users = {}
    for email, password, role in DEMO_USERS:
        users[role] = find_user(email) or create_account(email, password, role)
        click.echo(f"  {role.value:<9} {email:<22} password: {password}")
    if not no_batch:
        click.echo("Demo batch:")
        for line in load_demo_batch(users[Role.REVIEWER]):
            click.echo(f"  {line}")
