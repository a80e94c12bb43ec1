"""The audio and waveform peaks a task's player loads, from the media storage.

A task over the whole recording plays the browser rendition itself. A task over a window
plays a clip of just that window, cut once from the processing master and stored beside it,
so the player's times are the window's and a reviewer of minute 40–45 never loads the hour.

The caller has checked that the user may open the task. Local storage: the file, with Range
(`send_file`). S3: by AUDIO_DELIVERY, a redirect to a short-lived presigned URL (the
browser then reads the bucket with Range itself) or the object streamed through the web,
with Range answered from the bucket.
"""

from __future__ import annotations

import secrets

from flask import Response, current_app, redirect, request, send_file

from ..core.audio import cut_clip
from ..core.media_store import (
    drop_work_dir,
    is_local,
    local_file,
    media_storage,
    publish_file,
    work_dir,
)
from ..core.models import Assignment
from ..core.peaks import read_peaks
from .page import audio_span

MAX_AGE_S = 3600


def is_whole(task: Assignment) -> bool:
    start, end = audio_span(task)
    return start <= 0 and end >= task.sample.duration_s - 0.001


def task_audio_key(task: Assignment) -> str:
    """The storage key of the task's audio; a window's clip is cut on first use (two
    requests at once may both cut it: each stores the same clip whole)."""
    if is_whole(task):
        return task.sample.rendition_path
    start, end = audio_span(task)
    key = f"samples/{task.sample_id}/windows/{round(start * 1000)}-{round(end * 1000)}.m4a"
    store = media_storage()
    if store.exists(key):
        return key
    name = f"clip-{task.sample_id}-{secrets.token_hex(4)}"
    scratch = work_dir(name, store)
    try:
        with local_file(task.sample.master_path) as master:
            cut_clip(master, scratch / "clip.m4a", start, end)
        publish_file(store, scratch / "clip.m4a", key)
    finally:
        drop_work_dir(name, store)
    return key


def audio_response(task: Assignment) -> Response:
    key = task_audio_key(task)
    store = media_storage()
    if is_local(store):
        return send_file(
            store.existing(key), mimetype="audio/mp4", conditional=True, max_age=MAX_AGE_S
        )
    config = current_app.config
    if config["AUDIO_DELIVERY"] == "redirect":
        response = redirect(store.presigned_url(key, config["PRESIGNED_URL_SECONDS"]))
        response.cache_control.no_store = True  # the URL expires; ask the web again
        return response
    return streamed(store, key)


def streamed(store, key: str) -> Response:
    """The object through the web, answering a single byte range with 206."""
    size = store.size(key)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": f"private, max-age={MAX_AGE_S}"}
    asked = request.range
    span = None
    if asked is not None and asked.units == "bytes" and len(asked.ranges) == 1:
        span = asked.range_for_length(size)
        if span is None:
            return Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, stop = span or (0, size)
    if span:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(stop - start)
    return Response(
        store.stream(key, start, stop - start),
        status=206 if span else 200,
        mimetype="audio/mp4",
        headers=headers,
        direct_passthrough=True,
    )


def task_peaks(task: Assignment, max_points: int) -> dict:
    """Peaks of the task's stretch, with times counted from the start of its audio."""
    start, end = audio_span(task)
    with local_file(task.sample.peaks_path) as path:
        peaks = read_peaks(path, start_s=start, end_s=end, max_points=max_points)
    peaks["start_s"] = round(peaks["start_s"] - start, 6)
    peaks["duration_s"] = round(end - start, 6)
    peaks["data"] = [round(v, 4) for v in peaks["data"]]
    return peaks
