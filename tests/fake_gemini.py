"""A fake Gemini API on 127.0.0.1 for the real `google-genai` client.

It speaks the wire format the SDK uses (see `google/genai/_api_client.py`, `files.py`,
`models.py`):

* `POST /{version}/models/{model}:generateContent` — answered from a queue of scripted
  replies, else by a `responder(request)` callable; a key listed in `key_replies` always gets
  its own reply (a key whose quota is gone, a key that is not valid);
* the resumable upload of the Files API: `POST /upload/{version}/files` with
  `X-Goog-Upload-Protocol: resumable` and `X-Goog-Upload-Command: start` answers an
  `X-Goog-Upload-URL`; the bytes are then posted there with `upload, finalize`, which
  answers `{"file": {...}}`;
* `GET /{version}/files/{id}` (PROCESSING for the first `processing_polls` polls, then
  ACTIVE) and `DELETE /{version}/files/{id}`.

Every request is recorded (`requests`) so tests can check which key was used, whether the
audio went inline or by file, and what the prompt said.

The pytest fixtures at the end give a started fake (`fake`), the app pointed at it
(`gemini_app`), a real Celery worker on the llm queue (`llm_worker`), and `ingested` makes
real samples from generated audio. Test modules import the fixtures they use, and
`no_internet` from `tests.ytserver` (which `gemini_app` needs: nothing may leave 127.0.0.1).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.gemini.ratelimit import shared_store
from pipeline.stages.ingest import Recording, ingest
from ra_app.core.models import SourceKind

from . import audio

GENERATE = re.compile(r"^/(?P<version>v1[a-z0-9]*)/models/(?P<model>[^/:]+):generateContent$")
UPLOAD = re.compile(r"^/upload/(?P<version>v1[a-z0-9]*)/files$")
FILE = re.compile(r"^/(?P<version>v1[a-z0-9]*)/files/(?P<id>[A-Za-z0-9_-]+)$")


@dataclass
class Reply:
    status: int = 200
    body: dict | str = field(default_factory=dict)
    delay_s: float = 0.0

    def encoded(self) -> bytes:
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return text.encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body or b"{}")

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-goog-api-key")

    def parts(self) -> list[dict]:
        return [part for content in self.json.get("contents", []) for part in content["parts"]]

    @property
    def text(self) -> str:
        """The prompt text of a generateContent request (all text parts)."""
        return "\n".join(part["text"] for part in self.parts() if "text" in part)

    @property
    def system(self) -> str:
        parts = (self.json.get("systemInstruction") or {}).get("parts", [])
        return "\n".join(part.get("text", "") for part in parts)

    @property
    def audio(self) -> dict | None:
        """{"inline": bytes, "mime": ...} or {"file": uri, "mime": ...}, or None."""
        for part in self.parts():
            if "inlineData" in part:
                data = part["inlineData"]
                mime = data.get("mimeType") or data.get("mime_type")
                return {"inline": b64decode(data["data"]), "mime": mime}
            if "fileData" in part:
                data = part["fileData"]
                uri = data.get("fileUri") or data.get("file_uri")
                return {"file": uri, "mime": data.get("mimeType") or data.get("mime_type")}
        return None


def b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not (the SDK sends it URL-safe, unpadded)."""
    text = text.replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- replies -------------------------------------------------------------------------------


def candidate_reply(text: str, finish: str = "STOP", **extra) -> Reply:
    return Reply(
        body={
            "candidates": [
                {
                    "content": {"parts": [{"text": text}], "role": "model"},
                    "finishReason": finish,
                    "index": 0,
                    **extra,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 1200,
                "candidatesTokenCount": max(1, len(text) // 4),
                "totalTokenCount": 1200 + max(1, len(text) // 4),
            },
            "modelVersion": "gemini-2.5-flash",
        }
    )


def transcript_reply(sentences: list[dict]) -> Reply:
    """A well-formed answer: {"sentences": [{start, end, text, translation}, ...]}."""
    return candidate_reply(json.dumps({"sentences": sentences}, ensure_ascii=False))


def repair_reply(translations: dict[int, str]) -> Reply:
    items = [{"index": i, "translation": t} for i, t in translations.items()]
    return candidate_reply(json.dumps({"translations": items}, ensure_ascii=False))


def blocked_reply(reason: str = "SAFETY") -> Reply:
    """The prompt itself was blocked: no candidates, a promptFeedback."""
    return Reply(
        body={
            "promptFeedback": {
                "blockReason": reason,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}
                ],
            },
            "usageMetadata": {"promptTokenCount": 1200, "totalTokenCount": 1200},
        }
    )


def error_reply(code: int, status: str, message: str, details: list | None = None) -> Reply:
    error = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return Reply(status=code, body={"error": error})


def quota_reply(retry_delay: str = "1s", quota_id: str = "GenerateRequestsPerMinute") -> Reply:
    return error_reply(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaId": quota_id}],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ],
    )


def invalid_key_reply() -> Reply:
    return error_reply(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
    )


# --- the server ----------------------------------------------------------------------------


class FakeGemini:
    def __init__(self, processing_polls: int = 1):
        self.replies: deque[Reply] = deque()
        self.responder: Callable[[Request], Reply] | None = None
        self.key_replies: dict[str, Reply] = {}
        self.requests: list[Request] = []
        self.files: dict[str, dict] = {}
        self.uploads: dict[str, dict] = {}
        self.processing_polls = processing_polls
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=url.path,
                    query={k: v[0] for k, v in parse_qs(url.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with fake.lock:
                    fake.requests.append(request)
                try:
                    reply, headers = fake.answer(request)
                except Exception as error:  # a bug in a test's responder: say so, stay up
                    reply, headers = error_reply(500, "INTERNAL", f"fake: {error!r}"), {}
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = reply.encoded()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

            do_GET = do_POST = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # what was asked

    def generate_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith(":generateContent")]

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    # answers

    def answer(self, request: Request) -> tuple[Reply, dict]:
        if m := GENERATE.match(request.path):
            return self.generate(request, m["model"]), {}
        if (m := UPLOAD.match(request.path)) and request.method == "POST":
            return self.upload(request, m["version"])
        if m := FILE.match(request.path):
            return self.file(request, m["id"]), {}
        return error_reply(404, "NOT_FOUND", f"no route {request.method} {request.path}"), {}

    def generate(self, request: Request, model: str) -> Reply:
        if request.method != "POST":
            return error_reply(405, "METHOD_NOT_ALLOWED", "POST only")
        if request.api_key in self.key_replies:
            return self.key_replies[request.api_key]
        if not request.api_key:
            return error_reply(403, "PERMISSION_DENIED", "no API key")
        audio = request.audio
        if audio and "file" in audio:
            name = audio["file"].rsplit("/", 1)[-1]
            known = self.files.get(name)
            if known is None or known["state"] != "ACTIVE":
                return error_reply(400, "FAILED_PRECONDITION", f"file {name} is not ACTIVE")
            if known["key"] != request.api_key:
                return error_reply(403, "PERMISSION_DENIED", f"file {name} belongs to another key")
        with self.lock:
            if self.replies:
                return self.replies.popleft()
        if self.responder is not None:
            return self.responder(request)
        return error_reply(500, "INTERNAL", "the fake has no reply scripted")

    def upload(self, request: Request, version: str) -> tuple[Reply, dict]:
        command = request.headers.get("x-goog-upload-command", "")
        if "upload_id" not in request.query:
            if request.headers.get("x-goog-upload-protocol") != "resumable" or command != "start":
                return error_reply(400, "INVALID_ARGUMENT", "expected a resumable start"), {}
            if request.api_key in self.key_replies:
                return self.key_replies[request.api_key], {}
            upload_id = uuid.uuid4().hex
            self.uploads[upload_id] = {
                "key": request.api_key,
                "size": int(request.headers["x-goog-upload-header-content-length"]),
                "mime": request.headers["x-goog-upload-header-content-type"],
                "meta": request.json.get("file", {}),
                "data": b"",
            }
            query = f"upload_id={upload_id}&upload_protocol=resumable"
            url = f"{self.base_url}upload/{version}/files?{query}"
            return Reply(body={}), {"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active"}
        upload = self.uploads[request.query["upload_id"]]
        upload["data"] += request.body
        if "finalize" not in command:
            return Reply(body={}), {"X-Goog-Upload-Status": "active"}
        assert len(upload["data"]) == upload["size"], "upload size differs from the announced one"
        file_id = uuid.uuid4().hex[:12]
        self.files[file_id] = {
            "key": upload["key"],
            "mime": upload["mime"],
            "data": upload["data"],
            "polls": 0,
            "state": "PROCESSING",
            "deleted": False,
        }
        return Reply(body={"file": self.file_json(file_id)}), {"X-Goog-Upload-Status": "final"}

    def file_json(self, file_id: str) -> dict:
        known = self.files[file_id]
        return {
            "name": f"files/{file_id}",
            "mimeType": known["mime"],
            "sizeBytes": str(len(known["data"])),
            "uri": f"{self.base_url}v1beta/files/{file_id}",
            "state": known["state"],
        }

    def file(self, request: Request, file_id: str) -> Reply:
        known = self.files.get(file_id)
        if known is None or known["deleted"]:
            return error_reply(404, "NOT_FOUND", f"no file {file_id}")
        if request.method == "DELETE":
            known["deleted"] = True
            return Reply(body={})
        known["polls"] += 1
        if known["polls"] > self.processing_polls:
            known["state"] = "ACTIVE"
        return Reply(body=self.file_json(file_id))


# --- pytest fixtures -----------------------------------------------------------------------

KEY_1 = "test-key-number-one-0001"
KEY_2 = "test-key-number-two-0002"


@pytest.fixture
def fake():
    server = FakeGemini()
    yield server
    server.stop()


@pytest.fixture
def gemini_app(app, fake, no_internet):
    """The app talking to the fake with two keys, short timeouts and backoffs, and a clean
    shared state (key rests, rate-limit log) in Redis; nothing may leave the machine."""
    app.config.update(
        GEMINI_API_KEYS=[KEY_1, KEY_2],
        GEMINI_BASE_URL=fake.base_url,
        GEMINI_TIMEOUT_SECONDS=5.0,
        GEMINI_RETRIES=1,
        GEMINI_BACKOFF_SECONDS=0.01,
        GEMINI_KEY_COOLDOWN_SECONDS=30.0,
        GEMINI_FILE_POLL_SECONDS=0.01,
        GEMINI_REQUESTS_PER_MINUTE=1000,
    )
    store = shared_store(app.config)
    for name in store.redis.scan_iter("ra:gemini:*"):  # key rests left by an earlier test
        store.redis.delete(name)
    return app


@pytest.fixture
def llm_worker(celery_app):
    """A real Celery worker (in a thread of this process) consuming the llm queue."""
    from .workers import thread_worker

    with thread_worker(celery_app, "llm") as worker:
        yield worker


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gemini-audio")


def ingested(app, audio_dir, seconds: float = 10.0, freq: int = 330, title="bài nói") -> str:
    """A real sample: generated audio through the real ingest (master, rendition, peaks).
    The generated files are kept for the session; each test ingests into its own database."""
    path = audio_dir / f"{seconds:g}-{freq}.wav"
    if not path.exists():
        audio.tone(path, seconds, freq=freq, channels=1)
    with app.app_context():
        outcome = ingest(
            Recording(path=str(path), kind=SourceKind.FILE, external_id=str(path), title=title)
        )
    return outcome.sample_id
