"""The `google-genai` client: keys, rate limit, retries, audio.

`Gemini.generate` sends one request and returns the SDK's response, or raises:

* `TransientError` — worth retrying later: 5xx answers and timeouts after
  GEMINI_RETRIES in-task retries, every key out of quota, the rate limit used up;
* `PermanentError` — retrying cannot help: the request refused (400/404), no usable key.

On a quota error (429 / RESOURCE_EXHAUSTED) the key rests and the next key is tried at
once, after a short backoff; on a refused key (not valid, no permission) likewise. Audio up
to GEMINI_INLINE_MAX_BYTES goes inside the request; larger audio is uploaded through the
Files API (uploaded with the key that uses it: files belong to a key's project), waited for
until ACTIVE, and deleted after the request.

What a reply means, and the request's settings: pipeline/gemini/replies.py.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from ..errors import PermanentError, TransientError
from ..retries import doubling
from .keys import Key, KeyRing, scrub
from .ratelimit import RateLimiter, shared_store

log = logging.getLogger(__name__)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Network failures and timeouts of the HTTP library the SDK uses (httpx2 or httpx)."""
    found = []
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        found.append(module.TransportError)
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors()
TRANSIENT_CODES = {408, 499, 500, 502, 503, 504}


@dataclass(frozen=True)
class Settings:
    keys: tuple[str, ...]
    base_url: str | None
    api_version: str
    timeout_s: float
    requests_per_minute: int
    rate_limit_max_wait_s: float
    retries: int
    backoff_s: float
    key_cooldown_s: float
    key_daily_cooldown_s: float
    inline_max_bytes: int
    file_poll_s: float
    file_active_timeout_s: float

    @classmethod
    def from_config(cls, config: Mapping) -> Settings:
        return cls(
            keys=tuple(config["GEMINI_API_KEYS"]),
            base_url=config.get("GEMINI_BASE_URL") or None,
            api_version=config["GEMINI_API_VERSION"],
            timeout_s=config["GEMINI_TIMEOUT_SECONDS"],
            requests_per_minute=config["GEMINI_REQUESTS_PER_MINUTE"],
            rate_limit_max_wait_s=config["GEMINI_RATE_LIMIT_MAX_WAIT_SECONDS"],
            retries=config["GEMINI_RETRIES"],
            backoff_s=config["GEMINI_BACKOFF_SECONDS"],
            key_cooldown_s=config["GEMINI_KEY_COOLDOWN_SECONDS"],
            key_daily_cooldown_s=config["GEMINI_KEY_DAILY_COOLDOWN_SECONDS"],
            inline_max_bytes=config["GEMINI_INLINE_MAX_BYTES"],
            file_poll_s=config["GEMINI_FILE_POLL_SECONDS"],
            file_active_timeout_s=config["GEMINI_FILE_ACTIVE_TIMEOUT_SECONDS"],
        )

    def http_options(self) -> types.HttpOptions:
        return types.HttpOptions(
            base_url=self.base_url,
            api_version=self.api_version,
            timeout=int(self.timeout_s * 1000),  # the SDK counts milliseconds
        )


@dataclass(frozen=True)
class Audio:
    path: Path
    mime_type: str = "audio/mp4"

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass
class Tries:
    failures: int = 0  # 5xx answers and timeouts so far
    switches: int = 0  # keys rested for quota so far


_sdk_clients: dict[tuple, genai.Client] = {}
_sdk_lock = threading.Lock()
# Google counts a request when it arrives, we count it when its slot is taken, up to an
# upload earlier: a minute and this much keeps a burst at the minute's edge under the quota
# (a 429 would rest the key for GEMINI_KEY_COOLDOWN_SECONDS). Found by bench/throughput.py.
RATE_WINDOW_GUARD_S = 3.0


class Gemini:
    def __init__(self, settings: Settings, store, *, sleep=time.sleep):
        self.settings = settings
        self.ring = KeyRing(list(settings.keys), store, settings.key_cooldown_s)
        self.limiter = RateLimiter(
            store,
            settings.requests_per_minute,
            window_s=60.0 + RATE_WINDOW_GUARD_S,
            max_wait_s=settings.rate_limit_max_wait_s,
            name="rpm",
        )
        self.sleep = sleep

    @classmethod
    def from_config(cls, config: Mapping) -> Gemini:
        return cls(Settings.from_config(config), shared_store(config))

    # --- the SDK ---------------------------------------------------------------------------

    def sdk(self, key: Key) -> genai.Client:
        """One SDK client per key and settings, kept for the life of the worker process."""
        s = self.settings
        cache_key = (key.secret, s.base_url, s.api_version, s.timeout_s)
        with _sdk_lock:
            client = _sdk_clients.get(cache_key)
            if client is None:
                client = genai.Client(
                    vertexai=False, api_key=key.secret, http_options=s.http_options()
                )
                _sdk_clients[cache_key] = client
            return client

    def inline(self, audio: Audio) -> bool:
        return audio.size <= self.settings.inline_max_bytes

    def upload(self, key: Key, audio: Audio) -> types.File:
        """Upload through the Files API and wait until the file is ACTIVE."""
        s = self.settings
        client = self.sdk(key)
        config = types.UploadFileConfig(mime_type=audio.mime_type, display_name=audio.path.name)
        if s.base_url:  # the upload URL Google answers must go through the gateway too
            config.http_options = types.HttpOptions(
                base_url=s.base_url, timeout=int(s.timeout_s * 1000)
            )
        file = client.files.upload(file=str(audio.path), config=config)
        deadline = time.monotonic() + s.file_active_timeout_s
        while file.state != types.FileState.ACTIVE:
            if file.state == types.FileState.FAILED:
                raise TransientError(
                    f"Gemini could not process the uploaded audio {file.name}: {file.error}"
                )
            if time.monotonic() > deadline:
                raise TransientError(
                    f"the uploaded audio {file.name} was still {file.state} after "
                    f"{s.file_active_timeout_s:g} s"
                )
            self.sleep(s.file_poll_s)
            file = client.files.get(name=file.name)
        return file

    def delete_uploads(self, uploads: dict[Key, types.File]) -> None:
        for key, file in uploads.items():
            try:
                self.sdk(key).files.delete(name=file.name)
            except Exception as error:  # it expires after 48 h anyway
                log.info("could not delete %s with %s: %s", file.name, key.label, error)

    def audio_part(self, key: Key, audio: Audio, uploads: dict[Key, types.File]) -> types.Part:
        if self.inline(audio):
            return types.Part.from_bytes(data=audio.path.read_bytes(), mime_type=audio.mime_type)
        if key not in uploads:
            uploads[key] = self.upload(key, audio)
        file = uploads[key]
        return types.Part.from_uri(file_uri=file.uri, mime_type=file.mime_type or audio.mime_type)

    # --- one request -----------------------------------------------------------------------

    def backoff(self, n: int) -> float:
        return doubling(self.settings.backoff_s, n, 60.0)

    def generate(
        self,
        *,
        model: str,
        prompt: str,
        config: types.GenerateContentConfig,
        audio: Audio | None = None,
    ) -> types.GenerateContentResponse:
        tries = Tries()
        uploads: dict[Key, types.File] = {}
        try:
            while True:
                key = self.key_with_a_slot()
                try:
                    parts = [self.audio_part(key, audio, uploads)] if audio else []
                    parts.append(types.Part.from_text(text=prompt))
                    return self.sdk(key).models.generate_content(
                        model=model,
                        contents=[types.Content(role="user", parts=parts)],
                        config=config,
                    )
                except genai_errors.APIError as error:
                    if classify(error) == "refused":
                        uploads.pop(key, None)
                    self.after_api_error(key, error, tries)
                except TRANSPORT_ERRORS as error:
                    what = (
                        f"no answer within {self.settings.timeout_s:g} s"
                        if "Timeout" in type(error).__name__
                        else f"network error: {type(error).__name__}: {error}"
                    )
                    advice = "GEMINI_TIMEOUT_SECONDS sets the request timeout"
                    self.retry_or_raise(key, scrub(what, self.ring.keys), tries, advice)
        finally:
            self.delete_uploads(uploads)

    def key_with_a_slot(self) -> Key:
        """A key that is not resting and has a request left this minute (each key its own
        GEMINI_REQUESTS_PER_MINUTE, counted across all workers): the first until it is
        full, then the next, so two keys carry twice the load; waits when all are full."""
        keys = self.ring.usable()
        chosen, _ = self.limiter.acquire_any([key.fingerprint for key in keys])
        return keys[chosen]

    def after_api_error(self, key: Key, error: genai_errors.APIError, tries: Tries) -> None:
        """Rest or refuse the key, or wait for a retry; raise when it is time to give up."""
        kind = classify(error)
        message = self.describe(error)
        if kind == "quota":
            rest = self.ring.rest_after_quota(key, self.quota_rest(error))
            log.warning("%s out of quota (%s); resting %.0f s", key.label, message, rest)
            if tries.switches >= 2 * max(1, len(self.ring.keys)):
                raise TransientError(
                    f"Gemini keys keep running out of quota: {message}", "the task is retried later"
                ) from None
            self.sleep(self.backoff(tries.switches))
            tries.switches += 1
        elif kind == "refused":
            log.warning("%s refused: %s", key.label, message)
            self.ring.refuse(key, message)
        elif kind == "transient":
            self.retry_or_raise(key, message, tries)
        else:
            raise PermanentError(
                f"Gemini refused the request: {message}", code="api_error"
            ) from None

    def retry_or_raise(self, key: Key, what: str, tries: Tries, advice: str = "") -> None:
        tries.failures += 1
        if tries.failures > self.settings.retries:
            raise TransientError(
                f"Gemini failed {tries.failures} times, last: {what}",
                "; ".join(a for a in ("the task is retried later", advice) if a),
            ) from None
        log.warning("Gemini with %s: %s; retrying", key.label, what)
        self.sleep(self.backoff(tries.failures - 1))

    def describe(self, error: genai_errors.APIError) -> str:
        text = f"{error.code} {error.status or ''}: {error.message or error.details}"
        return scrub(" ".join(text.split()), self.ring.keys)

    def quota_rest(self, error: genai_errors.APIError) -> float:
        retry_after, daily = quota_details(error)
        if daily:
            return max(retry_after or 0.0, self.settings.key_daily_cooldown_s)
        return retry_after or 0.0

    # --- check-keys -----------------------------------------------------------------------

    def ping(self, key: Key, model: str) -> tuple[str, str]:
        """One tiny request with `key`: (state, detail), state ok/quota/refused/error."""
        try:
            self.limiter.acquire_any([key.fingerprint])
            self.sdk(key).models.generate_content(
                model=model,
                contents="Reply with the word OK.",
                config=types.GenerateContentConfig(max_output_tokens=16),
            )
        except genai_errors.APIError as error:
            kind = classify(error)
            state = {"quota": "quota", "refused": "refused"}.get(kind, "error")
            return state, self.describe(error)
        except TRANSPORT_ERRORS as error:
            return "error", scrub(f"{type(error).__name__}: {error}", self.ring.keys)
        except TransientError as error:
            return "error", str(error)
        return "ok", "answered"


def classify(error: genai_errors.APIError) -> str:
    """quota | refused | transient | permanent"""
    status = (error.status or "").upper()
    message = (error.message or "").lower()
    if error.code == 429 or status == "RESOURCE_EXHAUSTED":
        return "quota"
    if (
        error.code in (401, 403)
        or status in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        or "api_key_invalid" in str(error.details).lower()
        or "api key not valid" in message
        or "api key expired" in message
    ):
        return "refused"
    if error.code in TRANSIENT_CODES or status in ("UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"):
        return "transient"
    return "permanent"


def _error_details(error: genai_errors.APIError) -> list:
    details = error.details if isinstance(error.details, dict) else {}
    inner = details.get("error", details)
    found = inner.get("details") if isinstance(inner, dict) else None
    return found if isinstance(found, list) else []


def quota_details(error: genai_errors.APIError) -> tuple[float | None, bool]:
    """(the retry delay the API asked for, whether a daily quota ran out)."""
    retry_after, daily = None, False
    for item in _error_details(error):
        if not isinstance(item, dict):
            continue
        if "retryDelay" in item:
            match = re.match(r"^([\d.]+)s$", str(item["retryDelay"]))
            retry_after = float(match.group(1)) if match else None
        for violation in item.get("violations") or []:
            if "perday" in str(violation.get("quotaId", "")).lower():
                daily = True
    return retry_after, daily
