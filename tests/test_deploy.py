"""The deployment recipe (deploy/ansible) as an operator runs it: lint-clean, every playbook
through the syntax check, and a real run of site.yml against this machine with the local
connection into a throwaway prefix, its secrets in an Ansible Vault file. The units it
renders pass `systemd-analyze verify`; each unit's command line, started with the unit's
environment as systemd would (this machine runs no systemd), gives a web app that answers
/readyz and a worker consuming each queue; health.yml then reports what this machine lacks
(the GPU environments) and fails, as it must."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from .conftest import REDIS_URL
from .test_metrics import free_port
from .test_storage import new_bucket
from .workers import ROOT, stop_group, wait_for

ANSIBLE = ROOT / "deploy" / "ansible"
BIN = Path(sys.executable).parent
PLAYBOOKS = sorted(
    p.name for p in ANSIBLE.glob("*.yml") if not p.name.startswith(("inventory", "vault"))
)
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VAULT_PASSWORD = "vault-password-for-tests"
KINDS = {"io": "io", "cpu": "cpu", "llm": "llm", "gpu-align": "gpu", "gpu-denoise": "gpu_denoise"}


def tool_env(tmp_path: Path) -> dict:
    return {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_HOME": str(tmp_path / "ah"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "at"),
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }


def test_the_playbooks_pass_ansible_lint(tmp_path):
    linted = subprocess.run(
        [BIN / "ansible-lint", "--offline", "--nocolor"],
        cwd=ANSIBLE,
        env=tool_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert linted.returncode == 0, linted.stdout[-3000:] + linted.stderr[-3000:]
    assert "Last profile that met the validation criteria was 'production'" in linted.stderr


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_playbook_passes_the_syntax_check(playbook, tmp_path):
    checked = subprocess.run(
        [BIN / "ansible-playbook", "--syntax-check", "-e", "@vault.example.yml", playbook],
        cwd=ANSIBLE,
        env=tool_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def unit_command(unit: Path) -> tuple[list[str], dict, Path]:
    """A unit's ExecStart, environment and working folder, as systemd would give them."""
    env = {"PATH": SYSTEMD_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    command, folder = None, None
    for line in unit.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "EnvironmentFile":
            for setting in Path(value).read_text().splitlines():
                if setting and not setting.startswith("#"):
                    name, _, quoted = setting.partition("=")
                    env[name] = shlex.split(quoted)[0] if quoted else ""
        elif key == "Environment":
            name, _, setting = value.partition("=")
            env[name] = setting
        elif key == "ExecStart":
            command = shlex.split(value.replace("%H", socket.gethostname()))
        elif key == "WorkingDirectory":
            folder = Path(value)
    return command, env, folder


def test_a_local_run_deploys_units_that_systemd_accepts_and_that_serve(
    empty_database, celery_app, s3_endpoint, tmp_path
):
    env = tool_env(tmp_path)
    prefix = tmp_path / "root"
    mirror = tmp_path / "mirror"
    snapshot = mirror / "align" / "models--nguyenvulebinh--wav2vec2-base-vi" / "snapshots" / "a1"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"weights")
    (mirror / "align" / "wav2vec2_fairseq_base_ls960_asr_ls960.pth").write_bytes(b"weights")
    (mirror / "deepfilternet3" / "checkpoints").mkdir(parents=True)
    (mirror / "deepfilternet3" / "config.ini").write_text("[df]\n")
    (mirror / "deepfilternet3" / "checkpoints" / "model_120.ckpt.best").write_bytes(b"weights")

    # The inventory: this machine in every group, its secrets in an encrypted vault beside it.
    groups = ["web", "io", "cpu", "llm", "gpu_align", "gpu_denoise"]
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"children": {g: {"hosts": {"localhost": host}} for g in groups}}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    vault = tmp_path / "group_vars" / "all" / "vault.yml"
    vault.write_text(
        json.dumps(
            {
                "vault_secret_key": "s" * 48,
                "vault_database_password": "",
                "vault_broker_password": "",
                "vault_metrics_token": "token-from-the-vault",
                "vault_gemini_api_keys": ["vault-key-one-0001"],
                "vault_s3_access_key": "k",
                "vault_s3_secret_key": "s3-secret-from-the-vault",
            }
        )
    )
    password = tmp_path / "vault-password"
    password.write_text(VAULT_PASSWORD)
    encrypted = subprocess.run(
        [BIN / "ansible-vault", "encrypt", "--vault-password-file", password, vault],
        env=env,
        capture_output=True,
        text=True,
    )
    assert encrypted.returncode == 0 and vault.read_text().startswith("$ANSIBLE_VAULT;")

    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    web_port = free_port()
    ports = {kind: free_port() for kind in KINDS}
    overrides = {
        "review_prefix": str(prefix),
        "review_user": "root",
        "review_create_user": False,
        "review_install_packages": False,
        "review_manage_services": False,
        "review_repo": str(ROOT),
        "review_version": head,
        "review_s3_endpoint": s3_endpoint,  # the media in a bucket, as the example has it
        "review_s3_bucket": new_bucket(s3_endpoint).bucket,
        "review_prebuilt_venv": str(ROOT / ".venv"),
        "review_model_mirror": str(mirror),
        "review_database_url": empty_database().replace("+psycopg2", ""),
        "review_broker_url": REDIS_URL,
        "review_web_bind": f"127.0.0.1:{web_port}",
        "review_web_concurrency": 2,
        "review_worker_kinds": {
            kind: {
                "group": kind.replace("-", "_"),
                "queues": queue,
                "concurrency": 1,
                "venv": {"gpu": "align", "gpu_denoise": "denoise"}.get(queue, "main"),
                "metrics_port": ports[kind],
                "memory": "2G",
            }
            for kind, queue in KINDS.items()
        },
    }
    (tmp_path / "overrides.json").write_text(json.dumps(overrides))

    def playbook(name: str, *extra: str) -> subprocess.CompletedProcess:
        command = [
            BIN / "ansible-playbook",
            "-i",
            tmp_path / "inventory.yml",
            "-e",
            f"@{tmp_path / 'overrides.json'}",
            "--vault-password-file",
            password,
        ]
        return subprocess.run(
            [*command, *extra, name],
            cwd=ANSIBLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    deployed = playbook("site.yml")
    assert deployed.returncode == 0, deployed.stdout[-4000:] + deployed.stderr[-2000:]
    assert "Running upgrade" not in deployed.stdout  # the migration's output stays unlogged

    units_dir = prefix / "etc" / "systemd" / "system"
    names = {
        "review-web.service",
        "review-dispatch.service",
        "review-backup.service",
        "review-backup.timer",
        *(f"review-worker-{kind}.service" for kind in KINDS),
    }
    assert {p.name for p in units_dir.iterdir()} == names
    settings = prefix / "etc" / "review" / "review.env"
    assert oct(settings.stat().st_mode & 0o777) == "0o640"
    assert "GEMINI_API_KEY_1='vault-key-one-0001'" in settings.read_text()
    assert "STORAGE_BACKEND='s3'" in settings.read_text()
    assert "S3_SECRET_KEY='s3-secret-from-the-vault'" in settings.read_text()
    assert (prefix / "srv" / "review" / "current").resolve().name == head
    assert (prefix / "var/lib/review/models/deepfilternet3/config.ini").is_file()

    verified = subprocess.run(
        ["systemd-analyze", "verify", *sorted(units_dir.iterdir())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0 and not (verified.stdout + verified.stderr).strip(), (
        verified.stdout + verified.stderr
    )

    base = f"http://127.0.0.1:{web_port}"
    with ExitStack() as stack:
        for unit in sorted(units_dir.glob("review-*.service")):
            if unit.name == "review-backup.service":
                continue  # the timer's oneshot: run below, as the timer would
            command, unit_env, folder = unit_command(unit)
            process = subprocess.Popen(
                command,
                cwd=folder,
                env=unit_env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stack.callback(stop_group, process, 60)
        wait_for(lambda: _status(base + "/readyz") == 200, timeout=90, interval=0.5)

        def every_queue_consumed():
            answer = requests.get(base + "/readyz/queues", timeout=5).json()["queues"]
            return all(answer[queue]["consumers"] >= 1 for queue in KINDS.values())

        wait_for(every_queue_consumed, timeout=120, interval=1.0)
        for port in ports.values():  # each worker serves its pool's metrics (none counted yet)
            scraped = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert scraped.ok and scraped.headers["Content-Type"].startswith("text/plain")

        command, unit_env, folder = unit_command(units_dir / "review-backup.service")
        backup = subprocess.run(command, cwd=folder, env=unit_env, capture_output=True, text=True)
        assert backup.returncode == 0, backup.stdout + backup.stderr

        health = playbook("health.yml")
        # An upgrade: the next release beside this one, migrated, switched to, checked.
        upgrade = playbook("upgrade.yml", "-e", "review_release=next")
    assert upgrade.returncode != 0 and "is not healthy" in upgrade.stdout  # the GPU stack
    assert (
        "Move the link over current" in upgrade.stdout and "Run flask db upgrade" in upgrade.stdout
    )
    assert (prefix / "srv" / "review" / "current").resolve().name == "next"
    report = health.stdout
    assert health.returncode != 0, report[-3000:]
    assert "whisperx: whisperx is not importable" in report, report[-4000:]  # no GPU stack here
    assert "deepfilternet: df is not importable" in report
    assert "is not healthy" in report
    for fine in ("queue gpu:", "queue io:", "backups:", "alignment models:", "denoise model:"):
        assert fine not in report, fine  # consumed, backed up, and the weights complete
    assert "vault-key-one-0001" not in report and "s" * 48 not in report


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return None
