"""The multi-host drill (bench/multihost.py) as a test: the web host and three worker hosts
that share no disk — each worker in a mount namespace where the other hosts' folders are
hidden — take 20 recordings from an inbox only the web host sees through ingest, Gemini
(fake), review over HTTP, segmentation, denoising and export, with one worker host's cache
removed midway. The drill exits 1 on any loss, duplicate, file left on a host or snapshot
checksum failure; the test also reads its figures."""

from __future__ import annotations

import json
import subprocess
import sys

from .workers import ROOT


def test_hosts_without_a_shared_disk_take_every_recording_to_export(tmp_path):
    results = tmp_path / "multihost.json"
    drill = subprocess.run(
        [sys.executable, "-m", "bench.multihost", "--recordings", "20", "--max-minutes", "8",
         "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert drill.returncode == 0, drill.stdout[-3000:] + drill.stderr[-3000:]
    figures = json.loads(results.read_text())
    assert figures["failures"] == []
    assert figures["hosts_isolated"] is True
    assert figures["samples_exported"] == 20 and figures["exported_audio_mismatches"] == 0
    assert figures["samples_exported_more_than_once"] == 0 and figures["submits_lost"] == 0
    assert figures["files_left_on_hosts"] == {} and figures["uploads_left_in_bucket"] == 0
    assert figures["snapshot"]["ok"] and figures["snapshot"]["samples"] == 20
    by_host = figures["stages_by_host"]
    assert {"host1", "host2", "host3"} <= set(by_host)
    assert "ingest" not in by_host["host2"]  # it does not serve the io queue
    assert sum(stages.get("ingest", 0) for stages in by_host.values()) == 20
    assert "removed" in figures["events"][-1]
