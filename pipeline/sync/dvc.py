"""The DVC repository of an installation's data: `DATA_ROOT` itself, without Git
(`dvc init --no-scm`), with one `.dvc` file per tracked folder and the configured remote.

DVC runs as its command (`python -m dvc …`), as its users know it: its own progress bars
on a terminal, its own lock against a second DVC on the same folder. The cache links files
(hardlink where the file system allows, else a copy), so tracking does not double the disk.
The remote's file system (DVC's, whichever kind of remote) also holds each machine's
manifest under `review-sync/` (cycle.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app
from ruamel.yaml import YAML  # DVC's own dependency, for its own files

REMOTE = "origin"
MANIFESTS = "review-sync"


class SyncError(RuntimeError):
    pass


class DvcRepo:
    def __init__(self, root: Path, remote_url: str, config=None):
        self.root = root
        self.remote_url = remote_url
        self.config = config or current_app.config

    def run(self, *args: str, quiet: bool = False) -> str:
        """A `dvc` command in the repository; its output (also on the terminal unless
        `quiet`); a failure raises SyncError with DVC's message."""
        command = [sys.executable, "-m", "dvc", *args]
        if quiet or not sys.stdout.isatty():
            done = subprocess.run(command, cwd=self.root, capture_output=True, text=True)
            output = done.stdout + done.stderr
        else:
            done = subprocess.run(command, cwd=self.root, text=True)
            output = ""
        if done.returncode != 0:
            raise SyncError(f"dvc {args[0]} failed: {output.strip()[-2000:] or done.returncode}")
        return output

    def ensure(self) -> None:
        """The repository, its cache settings and the remote, made or brought up to date."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / ".dvc").is_dir():
            self.run("init", "--no-scm", "--quiet", quiet=True)
            self.run("config", "core.analytics", "false", quiet=True)
            self.run("config", "cache.type", "hardlink,copy", quiet=True)
        self.run("remote", "add", "--force", "--default", REMOTE, self.remote_url, quiet=True)
        if urlsplit(self.remote_url).scheme == "s3":
            self.s3_settings()

    def s3_settings(self) -> None:
        """The installation's S3 settings for an S3 remote; the keys in DVC's local config
        (.dvc/config.local, never in the shared one)."""
        settings = {
            "endpointurl": self.config.get("S3_ENDPOINT"),
            "access_key_id": self.config.get("S3_ACCESS_KEY"),
            "secret_access_key": self.config.get("S3_SECRET_KEY"),
        }
        for name, value in settings.items():
            if value:
                self.run("remote", "modify", "--local", REMOTE, name, value, quiet=True)

    def add(self, folders: list[str]) -> None:
        if folders:
            self.run("add", "--quiet", *folders, quiet=True)

    def push(self, targets: list[str]) -> None:
        self.run("push", "--remote", REMOTE, *targets)

    def pull(self, targets: list[str]) -> None:
        self.run("pull", "--force", "--remote", REMOTE, *targets)

    def tracked(self, folder: str) -> dict | None:
        """The `.dvc` file of `folder` as DVC wrote it (its single out), or None."""
        path = self.root / f"{folder}.dvc"
        if not path.exists():
            return None
        return dict(YAML(typ="safe").load(path.read_text())["outs"][0])

    def write_tracked(self, dvc_file: Path, out: dict) -> None:
        dvc_file.parent.mkdir(parents=True, exist_ok=True)
        with dvc_file.open("w") as handle:
            YAML(typ="safe").dump({"outs": [out]}, handle)

    # --- the manifests on the remote ------------------------------------------------------

    def remote_fs(self):
        from dvc.repo import Repo

        with Repo(str(self.root)) as repo:
            remote = repo.cloud.get_remote(REMOTE)
            return remote.fs, remote.path

    def write_manifest(self, machine: str, manifest: dict) -> None:
        fs, base = self.remote_fs()
        folder = fs.join(base, MANIFESTS)
        fs.makedirs(folder, exist_ok=True)
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        # Written whole under a temporary name, then moved: a reader never sees half of it.
        partial = fs.join(folder, f".{machine}.json.part")
        fs.pipe_file(partial, body)
        fs.mv(partial, fs.join(folder, f"{machine}.json"))

    def manifests(self) -> dict[str, dict]:
        fs, base = self.remote_fs()
        folder = fs.join(base, MANIFESTS)
        if not fs.exists(folder):
            return {}
        found = {}
        for path in fs.ls(folder, detail=False):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if name.endswith(".json") and not name.startswith("."):
                found[name.removesuffix(".json")] = json.loads(fs.cat_file(path))
        return found
