"""Label Studio import and a `flask sync` round trip, timed: machine A imports the Label
Studio fixtures (tests/data/labelstudio) and its audio copied `--copies` times over (each
copy a new recording: its bytes differ), pushes to a local-folder DVC remote; machine B,
empty, is restored from it and compared table by table and file by file.

Run: `.venv/bin/python -m bench.sync [--copies 25]`; figures in bench/results/sync.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

from ._support import create_database, drop_database, make_app, migrate
from .common import write_results

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "labelstudio"


def copies_of_the_project(folder: Path, copies: int) -> list[Path]:
    """Project A and B's snapshot exports `copies` times, each copy with its own audio
    (a different last sample, so a different recording) and its own task and item ids."""
    audio = folder / "audio"
    audio.mkdir(parents=True)
    exports = []
    for n in range(copies):
        for wav in (FIXTURES / "audio").glob("*.wav"):
            data = bytearray(wav.read_bytes())
            data[-2:] = n.to_bytes(2, "little")
            (audio / f"{n:03d}-{wav.name}").write_bytes(bytes(data))
        for project in ("projectA", "projectB"):
            tasks = json.loads((FIXTURES / f"{project}.snapshot.json").read_text())
            for task in tasks:
                name = re.sub(r"^[0-9a-f]{8}-", "", task["data"]["audio"].rsplit("/", 1)[-1])
                task["data"]["audio"] = f"http://127.0.0.1:8086/{n:03d}-{name}"
                task["data"]["title"] = f"{task['data']['title']} #{n}"
                for item in task["annotations"] + task["predictions"]:
                    if isinstance(item, dict):
                        item["id"] = f"{n}-{item['id']}"
            path = folder / f"{project}-{n:03d}.json"
            path.write_text(json.dumps(tasks, ensure_ascii=False))
            exports.append(path)
    return exports


def tree_digest(root: Path) -> tuple[int, str]:
    digest, count = hashlib.sha256(), 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
            count += 1
    return count, digest.hexdigest()


def cli(app, *args: str) -> tuple[str, float]:
    started = time.monotonic()
    result = app.test_cli_runner().invoke(args=list(args))
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return result.output, round(time.monotonic() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=25)
    args = parser.parse_args()
    from pipeline.backup import table_checksums

    names = []
    scratch = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        exports = copies_of_the_project(scratch / "ls", args.copies)
        remote = str(scratch / "remote")
        apps = {}
        for machine in ("a", "b"):
            name, url = create_database(f"bench_sync_{machine}")
            names.append(name)
            apps[machine] = make_app(
                url, scratch / machine, SYNC_REMOTE=remote, SYNC_MACHINE=machine
            )
            migrate(apps[machine])
        a, b = apps["a"], apps["b"]
        imported, import_s = cli(
            a,
            "import",
            "labelstudio",
            *map(str, exports),
            "--audio-root",
            str(scratch / "ls" / "audio"),
        )
        reimported, reimport_s = cli(
            a,
            "import",
            "labelstudio",
            *map(str, exports),
            "--audio-root",
            str(scratch / "ls" / "audio"),
        )
        pushed, push_s = cli(a, "sync", "--once")
        repushed, repush_s = cli(a, "sync", "--once")
        restored, restore_s = cli(b, "sync", "--force-restore")
        with a.app_context():
            sums_a = table_checksums()
        with b.app_context():
            sums_b = table_checksums()
        files_a = tree_digest(scratch / "a" / "samples")
        files_b = tree_digest(scratch / "b" / "samples")
        remote_bytes = sum(p.stat().st_size for p in Path(remote).rglob("*") if p.is_file())
        write_results(
            "sync",
            {
                "command": f".venv/bin/python -m bench.sync --copies {args.copies}",
                "label_studio_import": {
                    "export_files": len(exports),
                    "report": imported.strip().splitlines()[0],
                    "seconds": import_s,
                    "again_report": reimported.strip().splitlines()[0],
                    "again_seconds": reimport_s,
                },
                "sync": {
                    "rows": sum(t["rows"] for t in sums_a.values()),
                    "media_files": files_a[0],
                    "remote_bytes": remote_bytes,
                    "first_push_seconds": push_s,
                    "push_without_changes_seconds": repush_s,
                    "force_restore_seconds": restore_s,
                    "push_report": pushed.strip(),
                    "restore_report": restored.strip(),
                    "tables_identical": sums_a == sums_b,
                    "files_identical": files_a == files_b,
                },
            },
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for name in names:
            drop_database(name)


if __name__ == "__main__":
    main()
