"""Telling an API client's webhook how its recording is doing.

Events, each sent once in this order as the recording reaches it: `transcribed` (the machine
transcript and translation exist), `reviewed` (people corrected them), `segments_reviewed`
(its training segments were reviewed); or `failed`. A recording that moves on before its
webhook was told is told only where it is now.

A call is a POST of `{"event", "recording"}` (the recording as GET /api/v1/recordings/{id}
shows it) with `X-Event-Id` (the same for every attempt of one event: receivers drop
repeats), `X-Timestamp` (Unix seconds) and `X-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>" keyed by the API key's webhook secret>`. A 2xx answer ends it; anything
else is tried again after 30 s, 60 s, 120 s … (WEBHOOK_RETRY_SECONDS doubling) up to
WEBHOOK_MAX_ATTEMPTS, then given up and its error kept.

Delivery is at least once: each recording is locked while its call is made (two workers
never call it at once), and marked told only after a 2xx, so a worker killed in between
has it called again (with the same event id).

The dispatcher's sweep queues `pipeline.webhooks` while any webhook may have news.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from ra_app.core.api_recordings import describe, event_of, refresh
from ra_app.core.models import ApiKey, ApiSubmission, Sample, utcnow
from ra_app.extensions import db

log = logging.getLogger(__name__)
FINAL = ("failed", "segments_reviewed")


def waiting():
    """Submissions whose webhook may have something to hear now."""
    return sa.select(ApiSubmission).where(
        ApiSubmission.webhook_url.is_not(None),
        sa.or_(ApiSubmission.notified.is_(None), ApiSubmission.notified.not_in(FINAL)),
        sa.or_(ApiSubmission.webhook_next_at.is_(None), ApiSubmission.webhook_next_at <= utcnow()),
    )


def any_waiting() -> bool:
    return db.session.scalar(waiting().with_only_columns(ApiSubmission.id).limit(1)) is not None


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that answers with a redirect failed: following it could lead the worker
    to an address inside the network that the URL's check at submission kept out."""

    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirects)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def deliver_due(limit: int = 100) -> int:
    """Make the calls that are due; returns how many webhooks were told something."""
    told = 0
    ids = db.session.scalars(waiting().with_only_columns(ApiSubmission.id).limit(limit)).all()
    db.session.commit()
    for submission_id in ids:
        submission = db.session.scalar(
            waiting()
            .where(ApiSubmission.id == submission_id)
            .with_for_update(skip_locked=True, of=ApiSubmission)
        )
        if submission is not None:
            told += deliver(submission)
        db.session.commit()
    return told


def deliver(submission: ApiSubmission) -> bool:
    refresh(submission)
    sample = db.session.get(Sample, submission.sample_id) if submission.sample_id else None
    event = event_of(submission, sample)
    if event is None or event == submission.notified:
        return False
    key = db.session.get(ApiKey, submission.api_key_id)
    body = json.dumps({"event": event, "recording": describe(submission)}).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - webhook_url is http(s), checked when sent
        submission.webhook_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "speech-review-factory-webhook/1",
            "X-Event-Id": f"{submission.id}:{event}",
            "X-Timestamp": timestamp,
            "X-Signature": signature(key.webhook_secret, timestamp, body),
        },
    )
    config = current_app.config
    try:
        # webhook_url was checked to be http(s) when it was accepted.
        with OPENER.open(request, timeout=config["WEBHOOK_TIMEOUT_SECONDS"]) as answer:
            status = answer.status
            problem = f"answered {status}"
    except urllib.error.HTTPError as error:
        status, problem = error.code, f"answered {error.code}"
    except (urllib.error.URLError, OSError) as error:
        status, problem = None, f"{type(error).__name__}: {getattr(error, 'reason', error)}"
    if status is not None and 200 <= status < 300:
        submission.notified = event
        submission.webhook_attempts = 0
        submission.webhook_next_at = None
        submission.webhook_error = None
        return True
    submission.webhook_attempts += 1
    submission.webhook_error = f"{event}: {problem}"
    if submission.webhook_attempts >= config["WEBHOOK_MAX_ATTEMPTS"]:
        log.warning("webhook of %s: gave up on %s (%s)", submission.id, event, problem)
        submission.notified = event  # given up: the error stays, the next event is tried
        submission.webhook_attempts = 0
        submission.webhook_next_at = None
        return False
    wait = config["WEBHOOK_RETRY_SECONDS"] * 2 ** (submission.webhook_attempts - 1)
    submission.webhook_next_at = utcnow() + timedelta(seconds=wait)
    log.info("webhook of %s: %s %s; again in %s s", submission.id, event, problem, wait)
    return False
