"""The gemini stage with the real google-genai client against a fake Gemini on 127.0.0.1,
real samples (ingested from generated audio with ffmpeg), real Postgres and Redis, and a
real Celery worker on the llm queue."""

from __future__ import annotations

import json
import re
import time

import pytest
import sqlalchemy as sa

from pipeline.gemini.chunking import plan_chunks
from pipeline.gemini.keys import Key, KeyRing
from pipeline.gemini.ratelimit import shared_store
from pipeline.gemini_cli import gemini_group, run_gemini
from pipeline.tasks import gemini as gemini_task
from ra_app.core.models import (
    FailureClass,
    JobRun,
    JobStatus,
    Origin,
    Sample,
    TranscriptRevision,
    TranslationRevision,
)
from ra_app.core.revisions import latest_transcript, latest_translation, rows_of
from ra_app.core.states import ProcessingState
from ra_app.extensions import db

from .fake_gemini import (
    KEY_1,
    KEY_2,
    Reply,
    blocked_reply,
    candidate_reply,
    error_reply,
    ingested,
    invalid_key_reply,
    quota_reply,
    transcript_reply,
)
from .fake_gemini import audio_dir as audio_dir  # noqa: F401  (fixtures)
from .fake_gemini import fake as fake  # noqa: F401
from .fake_gemini import gemini_app as gemini_app  # noqa: F401
from .fake_gemini import llm_worker as llm_worker  # noqa: F401
from .ytserver import no_internet as no_internet  # noqa: F401

SENTENCES = [
    {
        "start": 0.4,
        "end": 3.1,
        "text": "Xin chào các bạn, hôm nay mình review cái laptop này.",
        "translation": "Xin chào các bạn, hôm nay mình đánh giá cái máy tính xách tay này.",
    },
    {
        "start": 3.5,
        "end": 6.0,
        "text": "Anh ấy đang đi meeting với khách hàng.",
        "translation": "Anh ấy đang đi meeting với khách hàng.",
    },
    {
        "start": 6.2,
        "end": 8.8,
        "text": "Let's check the report before lunch.",
        "translation": "",
    },
]


def rendition_of(app, sample_id):
    with app.app_context():
        return app.config["DATA_ROOT"] / db.session.get(Sample, sample_id).rendition_path


def run_task(sample_id: str, **kwargs):
    """The Celery task run in-process: it claims, records the job run, raises no retry."""
    return gemini_task.apply(args=[sample_id], kwargs=kwargs)


def state_of(app, sample_id):
    with app.app_context():
        sample = db.session.get(Sample, sample_id)
        transcript = latest_transcript(sample.id)
        translation = latest_translation(sample.id)
        runs = db.session.scalars(
            sa.select(JobRun).where(JobRun.stage == "gemini").order_by(JobRun.id)
        ).all()
        return {
            "state": sample.processing_state,
            "needs_review": sample.needs_translation_review,
            "flag_count": sample.translation_flag_count,
            "transcript": transcript,
            "translation": translation,
            "rows": rows_of(transcript, translation),
            "runs": runs,
            "revisions": db.session.scalar(sa.select(sa.func.count(TranscriptRevision.id))),
        }


def test_a_sample_is_transcribed_translated_and_flagged(gemini_app, fake, audio_dir):
    sample_id = ingested(gemini_app, audio_dir)
    fake.queue(transcript_reply(SENTENCES))

    result = run_task(sample_id)
    assert result.successful(), result.result
    assert result.result["status"] == "transcribed"

    got = state_of(gemini_app, sample_id)
    assert got["state"] is ProcessingState.TRANSCRIBED
    transcript, translation = got["transcript"], got["translation"]
    assert transcript.origin is Origin.GEMINI and translation.origin is Origin.GEMINI
    assert transcript.model_name == "gemini-2.5-flash" and transcript.prompt_version == "v1"
    assert translation.transcript_revision_id == transcript.id
    assert [r["text"] for r in got["rows"]] == [s["text"] for s in SENTENCES]
    assert [r["flags"] for r in got["rows"]] == [
        [],
        ["english_untranslated: meeting"],
        ["empty_translation"],
    ]
    assert got["needs_review"] and got["flag_count"] == 2
    (run,) = got["runs"]
    assert run.status is JobStatus.SUCCEEDED and run.subject == sample_id

    (request,) = fake.generate_requests()
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.api_key == KEY_1
    assert request.audio["mime"] == "audio/mp4"
    # The browser rendition, inline.
    assert request.audio["inline"] == rendition_of(gemini_app, sample_id).read_bytes()
    body = request.json
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    schema = body["generationConfig"]["responseSchema"]
    sentence = schema["properties"]["sentences"]["items"]
    assert set(sentence["required"]) == {"start", "end", "text", "translation"}
    assert "ri viu" in request.system and "Vietnamese" in request.system  # few-shot prompt
    assert "10.0 seconds long" in request.text

    again = run_task(sample_id)  # idempotent: done, no request, no revision
    assert (
        again.result["status"] == "done"
        and "already has Gemini revision v1" in again.result["message"]
    )
    assert len(fake.generate_requests()) == 1

    fake.queue(transcript_reply(SENTENCES[:1]))
    redo = run_task(sample_id, replace_existing=True)
    assert redo.result["status"] == "transcribed"
    redone = state_of(gemini_app, sample_id)
    assert redone["transcript"].version == 2 and len(redone["rows"]) == 1
    assert not redone["needs_review"]


def test_large_audio_goes_through_the_files_api(gemini_app, fake, audio_dir):
    gemini_app.config.update(GEMINI_INLINE_MAX_BYTES=1000)
    sample_id = ingested(gemini_app, audio_dir)
    fake.queue(transcript_reply(SENTENCES[:1]))

    result = run_task(sample_id)
    assert result.successful(), result.result

    assert fake.paths()[:2] == ["POST /upload/v1beta/files", "POST /upload/v1beta/files"]
    start, finalize = fake.requests[:2]
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-command"] == "start"
    assert finalize.headers["x-goog-upload-command"] == "upload, finalize"
    (file_id,) = fake.files
    assert fake.files[file_id]["polls"] >= 2  # waited for PROCESSING to become ACTIVE
    (request,) = fake.generate_requests()
    assert request.audio["file"].endswith(file_id)
    assert fake.files[file_id]["data"] == rendition_of(gemini_app, sample_id).read_bytes()
    assert fake.files[file_id]["deleted"]  # cleaned up after the request
    assert state_of(gemini_app, sample_id)["state"] is ProcessingState.TRANSCRIBED


SCRIPT = [  # (start, end, text) on the recording's clock; cuts at 14, 25 and 36 s
    (0.5, 4.0, "Xin chào các bạn hôm nay mình nói về laptop"),
    (4.5, 8.0, "cái máy này có pin khá là trâu"),
    (8.5, 12.0, "màn hình thì sáng và rất nét"),
    (12.5, 15.5, "nhưng mà cái giá thì hơi cao một chút"),  # across the first cut
    (16.0, 19.0, "so với mấy bạn sinh viên như tụi mình"),  # across chunk 1's end
    (19.5, 23.5, "nên mình nghĩ các bạn nên cân nhắc kỹ"),  # across chunk 3's start
    (24.0, 27.0, "trước khi quyết định mua nha mọi người"),  # across the second cut
    (27.5, 31.0, "còn về performance thì khỏi phải bàn"),  # across chunk 2's end
    (31.5, 34.5, "chạy mấy cái app nặng vẫn mượt lắm"),
    (35.0, 38.0, "kể cả khi mình mở cùng lúc nhiều tab"),  # across the third cut
    (38.5, 42.0, "bàn phím gõ cũng rất là sướng tay"),  # across chunk 3's end
    (42.5, 46.0, "tóm lại đây là một chiếc máy đáng mua"),
    (46.5, 49.5, "cảm ơn các bạn đã xem video nhé"),
]


def chunk_responder(chunks):
    """What a model would hear in each chunk: the sentences inside it, a sentence cut by
    the chunk's edge only in part, times from the chunk's start (a little off in every
    other chunk, as two readings never agree to the millisecond)."""

    def respond(request) -> Reply:
        part = int(re.search(r"part (\d+) of", request.text).group(1))
        chunk = chunks[part - 1]
        jitter = 0.15 if part % 2 == 0 else 0.0
        sentences = []
        for start, end, text in SCRIPT:
            if end <= chunk.start or start >= chunk.end:
                continue
            words = text.split()
            heard = (min(end, chunk.end) - max(start, chunk.start)) / (end - start)
            keep = max(1, round(len(words) * heard))
            if start < chunk.start:
                words = words[-keep:]
            elif end > chunk.end:
                words = words[:keep]
            sentences.append(
                {
                    "start": round(max(start, chunk.start) - chunk.start + jitter, 2),
                    "end": round(min(end, chunk.end) - chunk.start + jitter, 2),
                    "text": " ".join(words),
                    "translation": "Bản dịch tiếng Việt của câu này.",
                }
            )
        return transcript_reply(sentences)

    return respond


def test_long_audio_is_cut_into_overlapping_chunks_and_joined_without_loss(
    gemini_app, fake, audio_dir, tmp_path
):
    gemini_app.config.update(GEMINI_LONG_AUDIO_SECONDS=20.0, GEMINI_CHUNK_OVERLAP_SECONDS=6.0)
    sample_id = ingested(gemini_app, audio_dir, seconds=50.0)
    chunks = plan_chunks(50.0, 20.0, 6.0)
    assert len(chunks) == 4
    good = chunk_responder(chunks)
    scratch = gemini_app.config["DATA_ROOT"] / "tmp" / f"gemini-{sample_id}"

    # One chunk blocked: the chunks already answered are not written anywhere.
    blocked = blocked_reply("PROHIBITED_CONTENT")
    fake.responder = lambda request: blocked if "part 2" in request.text else good(request)
    failed = run_task(sample_id)
    assert failed.failed()
    assert "chunk 2 of 4: Gemini blocked the request: PROHIBITED_CONTENT" in str(failed.result)
    got = state_of(gemini_app, sample_id)
    assert got["transcript"] is None and got["state"] is ProcessingState.INGESTED
    assert got["runs"][0].failure_class is FailureClass.PERMANENT
    assert not scratch.exists()  # the cut chunks are removed, also on failure
    del fake.requests[:]

    fake.responder = good
    result = run_task(sample_id)
    assert result.successful(), result.result
    assert result.result["chunks"] == 4

    rows = state_of(gemini_app, sample_id)["rows"]
    assert [r["text"] for r in rows] == [text for _, _, text in SCRIPT]  # none lost or repeated
    for got, (start, end, _) in zip(rows, SCRIPT, strict=True):
        assert got["start"] == pytest.approx(start, abs=0.2)
        assert got["end"] == pytest.approx(end, abs=0.2)
    assert all(not r["flags"] for r in rows)  # in order, no overlaps, within the audio

    requests = fake.generate_requests()
    assert [int(re.search(r"part (\d) of 4", r.text).group(1)) for r in requests] == [1, 2, 3, 4]
    for request, chunk in zip(requests, chunks, strict=True):  # each chunk its own audio
        clip = tmp_path / "clip.m4a"
        clip.write_bytes(request.audio["inline"])
        assert audio_seconds(clip) == pytest.approx(chunk.duration, abs=0.1)
    assert not scratch.exists()


def audio_seconds(path) -> float:
    from pipeline.probe import probe

    return probe(path).duration_s


def test_a_key_out_of_quota_hands_over_to_the_next_key(gemini_app, fake, audio_dir):
    first = ingested(gemini_app, audio_dir, freq=300)
    second = ingested(gemini_app, audio_dir, freq=400)
    fake.queue(quota_reply(retry_delay="40s"), transcript_reply(SENTENCES[:1]))
    fake.queue(transcript_reply(SENTENCES[:1]))

    assert run_task(first).successful()
    assert [r.api_key for r in fake.generate_requests()] == [KEY_1, KEY_2]
    with gemini_app.app_context():
        ring = KeyRing([KEY_1, KEY_2], shared_store(gemini_app.config))
        assert ring.state(Key(1, KEY_1)) == "quota: resting 40 s"  # as long as Google asked
    # Every worker now skips the resting key: the next sample goes straight to key 2.
    assert run_task(second).successful()
    assert [r.api_key for r in fake.generate_requests()] == [KEY_1, KEY_2, KEY_2]


def test_two_keys_carry_twice_the_rate_limit(gemini_app, fake, audio_dir):
    """GEMINI_REQUESTS_PER_MINUTE is each key's: with one request a minute each, two samples
    go at once (key 1 full, key 2 takes the next), and a third waits for a slot."""
    gemini_app.config.update(GEMINI_REQUESTS_PER_MINUTE=1, GEMINI_RATE_LIMIT_MAX_WAIT_SECONDS=1)
    samples = [ingested(gemini_app, audio_dir, freq=f) for f in (310, 410, 510)]
    fake.queue(*(transcript_reply(SENTENCES[:1]) for _ in range(3)))
    started = time.monotonic()
    assert run_task(samples[0]).successful() and run_task(samples[1]).successful()
    assert time.monotonic() - started < 20  # no minute waited
    assert [r.api_key for r in fake.generate_requests()] == [KEY_1, KEY_2]
    third = run_task(samples[2])
    assert not third.successful() and "rate limit" in str(third.result)
    assert len(fake.generate_requests()) == 2  # nothing sent over either key's limit


def test_a_refused_key_is_skipped(gemini_app, fake, audio_dir):
    sample_id = ingested(gemini_app, audio_dir)
    fake.key_replies = {KEY_1: invalid_key_reply()}
    fake.queue(transcript_reply(SENTENCES[:1]))
    assert run_task(sample_id).successful()
    assert [r.api_key for r in fake.generate_requests()] == [KEY_1, KEY_2]


SLOW = 1.2  # seconds the fake takes when it is "too slow" (the tests' timeout is 0.5 s)


@pytest.mark.parametrize(
    "replies",
    [
        [error_reply(500, "INTERNAL", "boom"), transcript_reply(SENTENCES)],
        [Reply(delay_s=SLOW), transcript_reply(SENTENCES)],
    ],
    ids=["500-then-answer", "timeout-then-answer"],
)
def test_a_server_error_or_timeout_is_retried(gemini_app, fake, audio_dir, replies):
    gemini_app.config.update(GEMINI_RETRIES=1, GEMINI_TIMEOUT_SECONDS=0.5)
    sample_id = ingested(gemini_app, audio_dir)
    fake.queue(*replies)
    result = run_task(sample_id)
    assert result.successful(), result.result
    got = state_of(gemini_app, sample_id)
    (run,) = got["runs"]  # retried inside the one attempt
    assert run.status is JobStatus.SUCCEEDED and len(got["rows"]) == 3
    assert len(fake.generate_requests()) == 2


FAILURES = [  # (replies, in-task retries, failure class, what job_runs.error says, requests)
    ([Reply(delay_s=SLOW)], 0, "transient", "no answer within 0.5 s", 1),
    ([error_reply(503, "UNAVAILABLE", "overloaded")] * 2, 1, "transient", "503 UNAVAILABLE", 2),
    ([candidate_reply("Sure! Here is the transcript you asked for.")], 1, "transient",
     "the reply is not JSON", 1),
    ([candidate_reply(json.dumps({"sentences": [{"start": "soon", "text": "x"}]}))], 1,
     "transient", "the reply does not match the schema (sentences.0.start", 1),
    ([blocked_reply("SAFETY")], 1, "permanent",
     "Gemini blocked the request: SAFETY (HARM_CATEGORY_HARASSMENT: HIGH)", 1),
    ([candidate_reply("", finish="SAFETY")], 1, "permanent",
     "Gemini stopped the reply: finish reason SAFETY", 1),
    ([candidate_reply('{"sentences": [{"start": 0.4, "end": 3.1, "text": "Xin ch',
                      finish="MAX_TOKENS")], 1, "permanent",
     "cut off at the token limit (finish reason MAX_TOKENS", 1),
    ([error_reply(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")], 1,
     "permanent", "400 INVALID_ARGUMENT", 1),
]  # fmt: skip


def test_failures_never_leave_a_partial_revision(gemini_app, fake, audio_dir):
    """Each failure in turn on one sample: every attempt is a failed job run of the right
    class with the reason, and the sample stays exactly as it was."""
    gemini_app.config.update(GEMINI_TIMEOUT_SECONDS=0.5)
    sample_id = ingested(gemini_app, audio_dir)
    for n, (replies, retries, failure, message, calls) in enumerate(FAILURES, 1):
        gemini_app.config.update(GEMINI_RETRIES=retries)
        before = len(fake.generate_requests())
        fake.queue(*replies)

        result = run_task(sample_id)

        assert result.failed(), message
        assert len(fake.generate_requests()) - before == calls, message
        got = state_of(gemini_app, sample_id)
        assert got["transcript"] is None and got["translation"] is None  # nothing written
        assert got["state"] is ProcessingState.INGESTED and not got["needs_review"]
        run = got["runs"][-1]
        assert (len(got["runs"]), run.attempt, run.status) == (n, n, JobStatus.FAILED)
        assert run.failure_class is FailureClass(failure), run.error
        assert message in run.error
    with gemini_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(TranslationRevision.id))) == 0


def test_when_no_key_can_answer(gemini_app, fake, audio_dir):
    sample_id = ingested(gemini_app, audio_dir)

    gemini_app.config.update(GEMINI_API_KEYS=[])
    assert run_task(sample_id).failed()
    gemini_app.config.update(GEMINI_API_KEYS=[KEY_1, KEY_2])
    fake.key_replies = {KEY_1: invalid_key_reply(), KEY_2: quota_reply()}
    assert run_task(sample_id).failed()  # key 1 refused, key 2 out of quota: wait for it
    gemini_app.config.update(GEMINI_API_KEYS=[KEY_1])
    assert run_task(sample_id).failed()  # the only key is refused: an operator must act

    runs = state_of(gemini_app, sample_id)["runs"]
    assert [r.failure_class for r in runs] == [
        FailureClass.PERMANENT,
        FailureClass.TRANSIENT,
        FailureClass.PERMANENT,
    ]
    assert "no Gemini API key is configured: set GEMINI_API_KEY_1" in runs[0].error
    assert "out of quota" in runs[1].error
    assert "every Gemini API key was refused" in runs[2].error
    assert "flask gemini check-keys" in runs[2].error
    assert all(KEY_1 not in r.error and KEY_2 not in r.error for r in runs)
    assert state_of(gemini_app, sample_id)["transcript"] is None


def summary(output: str) -> dict[str, str]:
    lines = {}
    for line in output.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3:
            lines[parts[1]] = f"{parts[0]} {parts[2]}"
    return lines


def test_the_pipeline_command_runs_on_a_real_llm_worker(gemini_app, fake, llm_worker, audio_dir):
    first = ingested(gemini_app, audio_dir, freq=300, title="một")
    second = ingested(gemini_app, audio_dir, freq=400, title="hai")
    fake.responder = lambda request: transcript_reply(SENTENCES[:2])
    runner = gemini_app.test_cli_runner()

    planned = runner.invoke(run_gemini, ["--batch", "--dry-run"])
    assert planned.exit_code == 0, planned.output
    lines = summary(planned.output)
    assert lines[first].startswith("would_run") and "inline" in lines[first]
    assert "gemini-2.5-flash, prompt v1" in lines[first]
    assert fake.requests == []

    result = runner.invoke(run_gemini, ["--batch", "--limit", "5"])
    assert result.exit_code == 0, result.output
    lines = summary(result.output)
    assert lines[first].startswith("transcribed") and "2 sentences, 1 flagged" in lines[first]
    assert lines[second].startswith("transcribed")
    with gemini_app.app_context():
        runs = db.session.scalars(sa.select(JobRun).where(JobRun.stage == "gemini")).all()
        assert {r.status for r in runs} == {JobStatus.SUCCEEDED} and len(runs) == 2
        assert all(r.task_id for r in runs)  # through the broker, not in-process
        states = db.session.scalars(sa.select(Sample.processing_state)).all()
        assert set(states) == {ProcessingState.TRANSCRIBED}

    nothing = runner.invoke(run_gemini, ["--batch"])  # nothing waits any more
    assert nothing.exit_code == 0 and "nothing to do" in nothing.output
    one = runner.invoke(run_gemini, ["--sample-id", first])
    assert summary(one.output)[first].startswith("done")

    fake.responder = lambda request: Reply(delay_s=SLOW)
    gemini_app.config.update(GEMINI_TIMEOUT_SECONDS=0.5, GEMINI_RETRIES=0)
    failing = runner.invoke(run_gemini, ["--sample-id", first, "--replace-existing"])
    assert failing.exit_code == 1
    assert summary(failing.output)[first].startswith("retrying")  # Celery retries it later


def test_check_keys_reports_each_key_without_showing_it(gemini_app, fake):
    fake.key_replies = {KEY_2: invalid_key_reply()}
    fake.responder = lambda request: candidate_reply("OK")
    result = gemini_app.test_cli_runner().invoke(gemini_group, ["check-keys"])
    assert result.exit_code == 0, result.output
    assert KEY_1 not in result.output and KEY_2 not in result.output
    lines = result.output.splitlines()
    assert re.search(r"key 1 \(…0001\)\s+ok", lines[1])
    assert re.search(r"key 2 \(…0002\)\s+refused\s+400 INVALID_ARGUMENT: API key not", lines[2])
    assert "1 of 2 key(s) work." in result.output

    fake.key_replies = {KEY_1: quota_reply(), KEY_2: invalid_key_reply()}
    result = gemini_app.test_cli_runner().invoke(gemini_group, ["check-keys"])
    assert result.exit_code == 1 and "quota" in result.output
