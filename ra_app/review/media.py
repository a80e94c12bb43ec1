"""The audio and waveform peaks a task's player loads.

A task over the whole recording plays the browser rendition itself. A task over a window
plays a clip of just that window, cut once from the processing master and kept beside it,
so the player's times are the window's and a reviewer of minute 40–45 never loads the hour.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app

from ..core.audio import cut_clip
from ..core.models import Assignment
from ..core.peaks import read_peaks
from ..core.storage import local_storage
from .page import audio_span


def is_whole(task: Assignment) -> bool:
    start, end = audio_span(task)
    return start <= 0 and end >= task.sample.duration_s - 0.001


def task_audio_path(task: Assignment) -> Path:
    storage = local_storage(current_app.config)
    if is_whole(task):
        return storage.path(task.sample.rendition_path)
    start, end = audio_span(task)
    clip = storage.path(
        f"samples/{task.sample_id}/windows/{round(start * 1000)}-{round(end * 1000)}.m4a"
    )
    if not clip.exists():
        cut_clip(storage.path(task.sample.master_path), clip, start, end)
    return clip


def task_peaks(task: Assignment, max_points: int) -> dict:
    """Peaks of the task's stretch, with times counted from the start of its audio."""
    start, end = audio_span(task)
    storage = local_storage(current_app.config)
    peaks = read_peaks(
        storage.path(task.sample.peaks_path), start_s=start, end_s=end, max_points=max_points
    )
    peaks["start_s"] = round(peaks["start_s"] - start, 6)
    peaks["duration_s"] = round(end - start, 6)
    peaks["data"] = [round(v, 4) for v in peaks["data"]]
    return peaks
