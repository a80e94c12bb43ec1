"""Working on a review task: what the page shows, drafts, and submitting a revision."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from ..extensions import db
from ..models import (
    Assignment,
    AssignmentStatus,
    Decision,
    Origin,
    ReviewDecision,
    Sample,
    Segment,
    TaskType,
    TranscriptRevision,
    TranslationRevision,
    User,
    iso_utc,
    utcnow,
)
from ..revisions import (
    Window,
    latest_transcript,
    latest_translation,
    machine_draft,
    merge_window,
    rows_of,
    window_rows,
    write_revisions,
)
from ..states import ProcessingState, can_transition, transition
from . import gold, staging, text
from .tasks import TEXT_TASKS, extend_lease, reviewed_text

OPEN = (AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS, AssignmentStatus.REJECTED)


class TaskError(Exception):
    """A request the task cannot take; `status` is the HTTP answer."""

    status = 400

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


class NotEditable(TaskError):
    status = 409


class Invalid(TaskError):
    status = 422


class Stale(TaskError):
    status = 409


class NotHeard(TaskError):
    """Approval needs the whole task's audio played."""

    status = 409


def window_of(task: Assignment) -> Window:
    return Window(task.window_start_s, task.window_end_s)


def audio_span(task: Assignment) -> tuple[float, float]:
    """The stretch of the recording the task's player plays."""
    end = task.window_end_s if task.window_end_s is not None else task.sample.duration_s
    return task.window_start_s, min(end, task.sample.duration_s)


def can_edit(task: Assignment, user: User) -> bool:
    return task.reviewer_id == user.id and task.status is AssignmentStatus.IN_PROGRESS


def revision_rows(transcript_id, translation_id) -> list[dict]:
    transcript = db.session.get(TranscriptRevision, transcript_id) if transcript_id else None
    translation = db.session.get(TranslationRevision, translation_id) if translation_id else None
    return rows_of(transcript, translation)


def machine_rows(task: Assignment) -> list[dict]:
    draft = machine_draft(task.sample_id)
    return window_rows(rows_of(draft, None), window_of(task)) if draft else []


def segment_rows(task: Assignment) -> list[dict]:
    segments = db.session.scalars(
        sa.select(Segment).where(Segment.sample_id == task.sample_id).order_by(Segment.position)
    )
    window = window_of(task)
    return [
        {
            "start": s.start_s,
            "end": s.end_s,
            "text": s.text,
            "translation": s.translation,
            "too_long": s.too_long,
        }
        for s in segments
        if window.holds({"start": s.start_s})
    ]


def analyse(task: Assignment, rows: list[dict]) -> dict:
    """Languages per word, English share, and the diff and WER/CER against the machine."""
    sentences = []
    for row in rows:
        overrides = row.get("lang_overrides") or {}
        sentences.append(
            {
                "words": text.word_languages(row["text"], overrides),
                "english_share": round(text.english_share(row["text"], overrides), 3),
                "switches": text.switch_points(row["text"], overrides),
            }
        )
    machine = machine_rows(task)
    analysis = {"sentences": sentences}
    if machine:
        machine_text = " ".join(r["text"] for r in machine)
        human_text = " ".join(r["text"] for r in rows)
        analysis["diff"] = text.word_diff(machine_text, human_text)
        analysis.update(text.score_revision(machine, rows))
    return analysis


def shown_rows(task: Assignment) -> list[dict]:
    """The rows the page opens with: the draft's, else the task's (see task_data)."""
    drafted = (task.draft or {}).get("sentences")
    return drafted if drafted is not None else task_rows(task)


def opening_analysis(task: Assignment) -> dict:
    """The analysis of the rows the page opens with. Served after the page is ready (an
    hour's scoring and word tags take longer than drawing the page)."""
    return analyse(task, shown_rows(task)) if task.task_type in TEXT_TASKS else {}


def submitted_revisions(task: Assignment) -> tuple:
    """The revisions this task's submit wrote (None for a task not submitted yet)."""

    def of(model):
        return db.session.scalar(
            sa.select(model.id)
            .where(model.assignment_id == task.id)
            .order_by(model.version.desc())
            .limit(1)
        )

    return of(TranscriptRevision), of(TranslationRevision)


def task_rows(task: Assignment) -> list[dict]:
    """The rows the reviewer started from, or for a submitted task the rows it submitted."""
    if task.answer and task.answer.get("sentences") is not None:
        return task.answer["sentences"]  # a gold task's submit
    transcript_id, translation_id = (None, None)
    if task.status not in OPEN:
        transcript_id, translation_id = submitted_revisions(task)
    if transcript_id is None:
        transcript_id = task.base_transcript_revision_id
        translation_id = task.base_translation_revision_id
    return window_rows(revision_rows(transcript_id, translation_id), window_of(task))


def task_data(task: Assignment, user: User, urls: dict) -> dict:
    """Everything the task page needs, as JSON, but the analysis (opening_analysis)."""
    rows = task_rows(task)
    draft = task.draft or {}
    start, end = audio_span(task)
    config = current_app.config
    return {
        "task": {
            "id": str(task.id),
            "type": task.task_type.value,
            "status": task.status.value,
            "window_start": task.window_start_s,
            "window_end": end,
            "editable": can_edit(task, user),
            "lease_expires_at": iso_utc(task.lease_expires_at),
        },
        "sample": {
            "id": str(task.sample_id),
            "title": task.sample.title,
            "duration": task.sample.duration_s,
        },
        "urls": urls,
        "audio_offset": start,
        "base": {
            "transcript_revision_id": str(task.base_transcript_revision_id or ""),
            "translation_revision_id": str(task.base_translation_revision_id or ""),
        },
        "sentences": rows,
        "draft": draft or None,
        "draft_saved_at": iso_utc(task.draft_saved_at),
        "segments": draft.get("segments", segment_rows(task)),
        "rules": {
            "segment_min": config["SEGMENT_MIN_SECONDS"],
            "segment_max": config["SEGMENT_MAX_SECONDS"],
        },
        "review": staging.review_info(task),
        "returned": staging.return_info(task),
        "listened": (draft.get("listened") or []),
    }


def require_editable(task: Assignment, user: User) -> None:
    if task.reviewer_id != user.id:
        raise NotEditable("This task is not yours.")
    if task.status is not AssignmentStatus.IN_PROGRESS:
        raise NotEditable(
            f"This task is {task.status.value.replace('_', ' ')}; it can no longer be edited. "
            "Take it again from your queue."
        )


def save_draft(task: Assignment, user: User, payload: dict) -> dict:
    """Keep whatever the reviewer has typed, valid or not, and extend the lease."""
    require_editable(task, user)
    keys = ("sentences", "segments", "progress", "listened")
    draft = {key: payload[key] for key in keys if key in payload}
    if "sentences" in draft:
        draft["sentences"] = [clean_row(row, strict=False) for row in draft["sentences"]]
    staging.record_listening(task, payload.get("listened"), audio_span(task))
    task.draft = draft
    task.draft_saved_at = utcnow()
    task.progress = max(0.0, min(1.0, float(payload.get("progress") or task.progress or 0)))
    extend_lease(task)
    db.session.commit()
    analysis = analyse(task, draft.get("sentences", [])) if task.task_type in TEXT_TASKS else {}
    return {
        "saved_at": iso_utc(task.draft_saved_at),
        "lease_expires_at": iso_utc(task.lease_expires_at),
        "listened": task.listened_fraction,
        "analysis": analysis,
    }


def touch(task: Assignment, user: User, payload: dict) -> dict:
    """Activity: extends the lease, and records how much of the audio has been played."""
    require_editable(task, user)
    extend_lease(task)
    staging.record_listening(task, payload.get("listened"), audio_span(task))
    db.session.commit()
    return {
        "lease_expires_at": iso_utc(task.lease_expires_at),
        "listened": task.listened_fraction,
    }


def _number(value, name: str, index: int) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Invalid(f"Sentence {index + 1}: {name} is not a number.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise Invalid(f"Sentence {index + 1}: {name} is not a number.")
    return round(number, 3)


def clean_row(row: dict, strict: bool = True, index: int = 0) -> dict:
    """One sentence as typed: NFC text, times as numbers, overrides as a plain dict."""
    if not isinstance(row, dict):
        raise Invalid(f"Sentence {index + 1} is not a sentence.")
    overrides = row.get("lang_overrides") or {}
    flags = row.get("flags") or []
    cleaned = {
        "start": row.get("start"),
        "end": row.get("end"),
        "text": text.nfc(str(row.get("text") or "")),
        "translation": text.nfc(str(row.get("translation") or "")),
        "lang_overrides": {
            text.nfc(str(k)).lower(): v for k, v in dict(overrides).items() if v in ("vi", "en")
        },
        "flags": [str(f) for f in flags if isinstance(f, str)],
    }
    if strict:
        cleaned["start"] = _number(cleaned["start"], "start", index)
        cleaned["end"] = _number(cleaned["end"], "end", index)
    return cleaned


def validate_rows(task: Assignment, rows: list) -> list[dict]:
    if not isinstance(rows, list):
        raise Invalid("No sentences were sent.")
    window = window_of(task)
    duration = task.sample.duration_s
    cleaned = sorted((clean_row(r, True, i) for i, r in enumerate(rows)), key=lambda r: r["start"])
    problems = []
    for i, row in enumerate(cleaned, 1):
        if not row["text"]:
            problems.append(f"Sentence {i} is empty: type its text or delete it.")
        if row["end"] <= row["start"]:
            problems.append(f"Sentence {i} ends before it starts.")
        if row["start"] < 0 or row["end"] > duration + 0.05:
            problems.append(f"Sentence {i} runs outside the recording (0–{duration:.1f} s).")
        if not window.holds(row):
            problems.append(
                f"Sentence {i} starts at {row['start']:.2f} s, outside this task's "
                f"window ({window.label()})."
            )
    if problems:
        raise Invalid("The sentences need fixing before they can be submitted.", problems=problems)
    return cleaned


def comparable(rows: list[dict]) -> list[tuple]:
    return [(r["start"], r["end"], r["text"], r.get("translation", "")) for r in rows]


def lock_sample(sample_id) -> Sample:
    """Submits of one sample's windows take turns (Postgres row lock; SQLite's write lock)."""
    return db.session.scalar(sa.select(Sample).where(Sample.id == sample_id).with_for_update())


def submit(task: Assignment, user: User, payload: dict) -> dict:
    require_editable(task, user)
    if task.review_of_id is not None:
        raise Invalid("This is a second review: approve it or reject it.")
    if task.is_gold:
        result = submit_gold(task, payload)
        close(task, user, Decision.SUBMIT)
        db.session.commit()
        return result
    sample = lock_sample(task.sample_id)
    if task.task_type is TaskType.AUDIO_SEGMENTATION:
        result = submit_segments(task, sample, payload.get("segments"))
    else:
        result = submit_text(task, sample, user, payload)
    close(task, user, Decision.SUBMIT, **result.pop("decision", {}))
    if staging.needs_second_review(task, user):
        staging.send_to_second_review(task)
        result["second_review"] = True
    finish_and_chain(sample, task.task_type)
    return result


def close(task: Assignment, user: User, decision: Decision, **record) -> ReviewDecision:
    """The task is done: no lease, no draft, and its decision on record."""
    task.status = AssignmentStatus.SUBMITTED
    task.submitted_at = utcnow()
    task.lease_expires_at = None
    task.progress = 1.0
    task.draft = None
    entry = ReviewDecision(assignment_id=task.id, reviewer_id=user.id, decision=decision, **record)
    db.session.add(entry)
    return entry


def finish_and_chain(sample: Sample, task_type: TaskType) -> None:
    moved_on = finish_sample_if_done(sample, task_type)
    db.session.commit()
    if moved_on:  # after the commit, so the workers see the new state
        from pipeline.tasks import chain_after_approval

        chain_after_approval(sample.id)


def submit_gold(task: Assignment, payload: dict) -> dict:
    """Scored against the known answer; the sample's revisions stay as they are."""
    if task.task_type is TaskType.TRANSLATION_REVIEW:
        base = revision_rows(task.base_transcript_revision_id, task.base_translation_revision_id)
        rows = translated_rows(window_rows(base, window_of(task)), payload.get("sentences"))
    else:
        rows = validate_rows(task, payload.get("sentences"))
    task.answer = {"sentences": rows}
    task.score = gold.score(task, rows)
    machine = machine_rows(task)
    scores = text.score_revision(machine, rows) if machine else {}
    return {"wer": scores.get("wer"), "cer": scores.get("cer")}


def decide(task: Assignment, user: User, payload: dict) -> dict:
    """A second reviewer's decision on the task under review."""
    require_editable(task, user)
    if task.review_of_id is None:
        raise Invalid("Only a second review is approved or rejected; submit this task.")
    try:
        decision = Decision(payload.get("decision"))
    except ValueError:
        decision = None
    if decision not in staging.DECISIONS:
        raise Invalid("Choose approve, approve with minor changes, with major changes, or reject.")
    comment = str(payload.get("comment") or "").strip()[:5000] or None
    original = db.session.get(Assignment, task.review_of_id)
    staging.record_listening(task, payload.get("listened"), audio_span(task))
    sample = lock_sample(task.sample_id)
    record: dict = {}
    if decision is Decision.REJECT:
        if not comment:
            raise Invalid("Say what the author should fix: a rejection needs a comment.")
        staging.reject(original)
    else:
        heard, required = task.listened_fraction or 0.0, staging.listen_required()
        if heard < required:
            raise NotHeard(
                f"Play the whole task before approving: you have heard {heard:.0%} of it.",
                listened=heard,
                required=required,
            )
        record = approve_changes(task, original, sample, user, payload, decision)
        original.status = AssignmentStatus.APPROVED
    close(task, user, decision, comment=comment, **record)
    finish_and_chain(sample, task.task_type)
    return {"decision": decision.value, **{k: v for k, v in record.items() if k in AGREEMENT}}


AGREEMENT = ("wer", "cer", "boundary_diff_s")


def approve_changes(task, original, sample, user, payload, decision) -> dict:
    """Write the second reviewer's changes, if any, and measure how far they moved the
    author's work: the agreement kept with the decision."""
    window = window_of(task)
    if task.task_type is TaskType.AUDIO_SEGMENTATION:
        author = (original.answer or {}).get("segments") or []
        sent = payload.get("segments")
        if decision in staging.WITH_CHANGES and isinstance(sent, list) and sent:
            submit_segments(task, sample, sent)  # validates; the answer is the new cut
            final = task.answer["segments"]
        else:
            if isinstance(sent, list) and sent and segments_differ(author, sent):
                raise Invalid(CHANGED)
            final = author
        return {"boundary_diff_s": staging.boundary_shift(author, final)}
    author_rows = window_rows(
        revision_rows(task.base_transcript_revision_id, task.base_translation_revision_id), window
    )
    if task.task_type is TaskType.TRANSLATION_REVIEW:
        edited = translated_rows(author_rows, payload.get("sentences"))
    else:
        edited = validate_rows(task, payload.get("sentences"))
    changed = comparable(edited) != comparable(author_rows)
    if changed and decision not in staging.WITH_CHANGES:
        raise Invalid(CHANGED)
    record = {}
    if changed:
        record = submit_text(task, sample, user, payload)["decision"]
    ours = reviewed_text(author_rows, task.task_type)
    final = reviewed_text(edited, task.task_type)
    return {**record, "wer": text.wer(final, ours), "cer": text.cer(final, ours)}


def segments_differ(author: list, sent: list) -> bool:
    try:
        mine = [[round(float(s["start"]), 3), round(float(s["end"]), 3)] for s in sent]
    except (TypeError, ValueError, KeyError):
        return True
    return sorted(mine) != sorted([[round(a, 3), round(b, 3)] for a, b in author])


CHANGED = (
    "You changed the work: choose “Approve with minor changes” or “with major changes”, "
    "or undo your edits to approve it as it is."
)


def submit_text(task: Assignment, sample: Sample, user: User, payload: dict) -> dict:
    window = window_of(task)
    current_t = latest_transcript(sample.id)
    current_tr = latest_translation(sample.id)
    current = rows_of(current_t, current_tr)
    base = revision_rows(task.base_transcript_revision_id, task.base_translation_revision_id)
    if not payload.get("force") and comparable(window_rows(current, window)) != comparable(
        window_rows(base, window)
    ):
        who = current_t.author.email if current_t and current_t.author else "the pipeline"
        raise Stale(
            f"This part of the recording was changed by {who} (version {current_t.version}) "
            "after you started. Your draft is kept. Compare with the current text, then "
            "submit again to replace it with yours.",
            current=window_rows(current, window),
            current_transcript_revision_id=str(current_t.id),
        )
    if task.task_type is TaskType.TRANSLATION_REVIEW:
        edited = translated_rows(window_rows(current, window), payload.get("sentences"))
    else:
        edited = validate_rows(task, payload.get("sentences"))
    merged = merge_window(current, window, edited)
    # The edit rate of this task: its window of the machine draft against what was sent.
    machine = machine_rows(task)
    scores = text.score_revision(machine, edited) if machine else {}
    has_translation = current_tr is not None or any(r.get("translation") for r in merged)
    transcript, translation = write_revisions(
        sample,
        merged,
        origin=Origin.HUMAN,
        with_translation=has_translation,
        author_id=user.id,
        assignment_id=task.id,
        base_transcript=current_t,
        base_translation=current_tr,
        scores=scores,
    )
    db.session.flush()
    return {
        "transcript_version": transcript.version,
        "translation_version": translation.version if translation else None,
        "wer": scores.get("wer"),
        "cer": scores.get("cer"),
        "decision": {
            "transcript_revision_id": transcript.id,
            "translation_revision_id": translation.id if translation else None,
        },
    }


def translated_rows(current: list[dict], sent) -> list[dict]:
    """translation_review edits only translations and flags; the transcript stays as it is."""
    if not isinstance(sent, list) or len(sent) != len(current):
        raise Invalid("The sentences changed while you were reviewing; reload the task.")
    rows = []
    for i, (row, edit) in enumerate(zip(current, sent, strict=True)):
        cleaned = clean_row(edit, strict=False, index=i)
        if not cleaned["translation"]:
            raise Invalid(f"Sentence {i + 1} has no translation.")
        kept_flags = [f for f in cleaned["flags"] if f in row["flags"]]  # clear, never add
        rows.append({**row, "translation": cleaned["translation"], "flags": kept_flags})
    return rows


def submit_segments(task: Assignment, sample: Sample, sent) -> dict:
    """Replace the window's segments; their text and translation follow the sentences."""
    config = current_app.config
    low, high = config["SEGMENT_MIN_SECONDS"], config["SEGMENT_MAX_SECONDS"]
    if not isinstance(sent, list) or not sent:
        raise Invalid("No segments were sent.")
    window = window_of(task)
    rows = rows_of(latest_transcript(sample.id), latest_translation(sample.id))
    segments, problems = [], []
    for i, seg in enumerate(sorted(sent, key=lambda s: float(s.get("start", 0))), 1):
        start, end = (
            _number(seg.get("start"), "start", i - 1),
            _number(seg.get("end"), "end", i - 1),
        )
        inside = [r for r in rows if start <= (r["start"] + r["end"]) / 2 < end]
        single_long = len(inside) == 1 and inside[0]["end"] - inside[0]["start"] > high
        length = end - start
        if not window.holds({"start": start}):
            problems.append(f"Segment {i} starts outside this task's window ({window.label()}).")
        elif end <= start:
            problems.append(f"Segment {i} ends before it starts.")
        elif not (low <= length <= high) and not single_long:
            problems.append(
                f"Segment {i} is {length:.1f} s long; segments must be {low:g}–{high:g} s."
            )
        if segments and start < segments[-1]["end"] - 0.001:
            problems.append(f"Segment {i} overlaps the one before it.")
        segments.append(
            {
                "start": start,
                "end": end,
                "too_long": single_long,
                "text": " ".join(r["text"] for r in inside),
                "translation": " ".join(r["translation"] for r in inside if r["translation"]),
            }
        )
    if problems:
        raise Invalid("The segments need fixing before they can be submitted.", problems=problems)
    task.answer = {"segments": [[s["start"], s["end"]] for s in segments]}
    existing = db.session.scalars(sa.select(Segment).where(Segment.sample_id == sample.id)).all()
    kept = [s for s in existing if not window.holds({"start": s.start_s})]
    for segment in existing:
        if segment not in kept:
            db.session.delete(segment)
    db.session.flush()
    transcript = latest_transcript(sample.id)
    translation = latest_translation(sample.id)
    ordered = sorted(
        [(s.start_s, s) for s in kept] + [(s["start"], s) for s in segments],
        key=lambda pair: pair[0],
    )
    for position, (_, item) in enumerate(ordered):
        if isinstance(item, Segment):
            item.position = -1 - position  # out of the way of the unique (sample, position)
    db.session.flush()
    for position, (_, item) in enumerate(ordered):
        if isinstance(item, Segment):
            item.position = position
        else:
            db.session.add(
                Segment(
                    sample_id=sample.id,
                    position=position,
                    start_s=item["start"],
                    end_s=item["end"],
                    text=item["text"],
                    translation=item["translation"],
                    too_long=item["too_long"],
                    transcript_revision_id=transcript.id if transcript else None,
                    translation_revision_id=translation.id if translation else None,
                )
            )
    return {"segments": len(segments)}


def finish_sample_if_done(sample: Sample, task_type: TaskType) -> bool:
    """When the last open task of a kind is submitted, the sample moves on (True)."""
    kinds = TEXT_TASKS if task_type in TEXT_TASKS else (TaskType.AUDIO_SEGMENTATION,)
    still_open = db.session.scalar(
        sa.select(sa.func.count()).where(
            Assignment.sample_id == sample.id,
            Assignment.task_type.in_(kinds),
            Assignment.status.in_(OPEN),
            Assignment.is_gold.is_(False),
        )
    )
    if still_open:
        return False
    target = (
        ProcessingState.REVIEWED if task_type in TEXT_TASKS else ProcessingState.SEGMENTS_REVIEWED
    )
    if not can_transition(sample.processing_state, target):
        return False
    transition(sample, target)
    return True
