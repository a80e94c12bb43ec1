"""The house's layout holds: one domain core (ra_app/core) that both the web app and the
pipeline import and that imports neither; a web app that never imports the pipeline (it
queues work by task name); short modules, or a reason at the top of a long one."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LONG_LINES = 360  # "about 350 lines": past this a module says at its top why it is long
LONG_REASON = "Long module:"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function, relative ones resolved."""
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


SHARED = ("ra_app.core", "ra_app.extensions")  # what the web app and the pipeline share


@pytest.mark.parametrize("path", python_files("ra_app/core"), ids=lambda p: p.name)
def test_the_core_imports_neither_the_web_app_nor_the_pipeline(path):
    wrong = {
        name
        for name in imports_of(path)
        if within(name, "pipeline") or (within(name, "ra_app") and not within(name, *SHARED))
    }
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


@pytest.mark.parametrize("path", python_files("pipeline"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_pipeline_imports_only_the_core_of_the_app(path):
    wrong = {n for n in imports_of(path) if within(n, "ra_app") and not within(n, *SHARED)}
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


@pytest.mark.parametrize(
    "path",
    [p for p in python_files("ra_app") if not within(module_name(p), "ra_app.core")],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_web_app_never_imports_the_pipeline(path):
    wrong = {n for n in imports_of(path) if within(n, "pipeline")}
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def loaded_by(statement: str, **environ: str) -> set[str]:
    """The app's and the pipeline's modules a fresh interpreter has loaded after it."""
    code = (
        f"import sys; {statement}; "
        "print('\\n'.join(m for m in sys.modules if m.split('.')[0] in ('ra_app', 'pipeline')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **environ},
    )
    return set(done.stdout.split())


def test_a_pure_function_of_the_core_loads_no_page_and_no_stage():
    loaded = loaded_by("from ra_app.core.text import word_languages")
    assert not {m for m in loaded if within(m, "ra_app.review", "ra_app.admin", "ra_app.auth")}
    assert not {m for m in loaded if within(m, "pipeline")}


def test_creating_the_app_loads_no_stage_code(tmp_path):
    loaded = loaded_by(
        "from ra_app import create_app; create_app()",
        APP_ENV="development",
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.sqlite3'}",
        DATA_ROOT=str(tmp_path / "data"),
        SECRET_KEY="a-key-for-this-test-only",
    )
    assert "ra_app.review.routes" in loaded  # the app was made
    assert not {m for m in loaded if within(m, "pipeline")}, sorted(loaded)


def source_files() -> list[Path]:
    files = python_files("ra_app", "pipeline", "bench")
    files += sorted((ROOT / "static/js").rglob("*.js"))
    return [p for p in files if "vendor" not in p.parts]


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_module_says_why_at_its_top(path):
    lines = path.read_text().splitlines()
    if len(lines) <= LONG_LINES:
        return
    top = "\n".join(lines[:40])
    assert LONG_REASON in top, (
        f"{path.relative_to(ROOT)} has {len(lines)} lines: split it along its ideas, or say "
        f"at its top why not ({LONG_REASON} …)"
    )


def test_the_cli_knows_every_pipeline_command_by_name():
    """The names the app's CLI lists without importing the pipeline are exactly the
    pipeline's commands."""
    from pipeline.commands import COMMANDS
    from ra_app.commands import PIPELINE_NAMES

    assert set(PIPELINE_NAMES) == set(COMMANDS)
    assert all(COMMANDS[name].name == name for name in COMMANDS)


def pins(filename: str) -> dict[str, str]:
    """Package name (extras dropped, lower case) -> version, of a requirements file."""
    found = {}
    for line in (ROOT / filename).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            found[name.split("[")[0].lower()] = version
    return found


def test_the_denoise_environment_repeats_every_base_pin_but_numpy():
    """Its own file (numpy<2), kept in step by hand: a base pin missing there is an import
    error on a GPU host only."""
    base, denoise = pins("requirements.txt"), pins("requirements-gpu-denoise.txt")
    missing = {name: version for name, version in base.items() if denoise.get(name) != version}
    assert set(missing) == {"numpy"}, missing
