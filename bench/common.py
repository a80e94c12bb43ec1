"""Shared helpers of the benchmarks: where results go and how they are written."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {"host": platform.node(), "cpus": cpus, "python": platform.python_version()}


def write_results(name: str, figures: dict, path: Path | None = None) -> Path:
    """Print the figures and write them to bench/results/<name>.json (or `path`)."""
    RESULTS.mkdir(exist_ok=True)
    record = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **figures,
    }
    path = path or RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(record, indent=2, ensure_ascii=False))
    print(f"written to {path}")
    return path
