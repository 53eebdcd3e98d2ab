"""rowferry as a user gets it: a wheel built with ``python -m build``, installed by pip into a
new virtual environment that sees nothing of this one, runs its command and its demo.

The wheel is built from a copy of the project (pyproject.toml, README.md, LICENSE, src/), so
that the build leaves nothing in the working tree; pip fetches the dependencies as it would for
a user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE")
#: building, creating the environment and installing the dependencies from the registry
INSTALL_SECONDS = 600


def _run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        env=_clean_env(),
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


def _clean_env() -> dict[str, str]:
    """This process's environment without what would let the new one see this one."""
    skipped = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in skipped}


def _project_copy(into: Path) -> Path:
    into.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, into / name)
    shutil.copytree(
        ROOT / "src", into / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    return into


@pytest.mark.slow
def test_the_built_wheel_installs_into_a_new_environment_and_runs_the_demo(tmp_path: Path) -> None:
    project = _project_copy(tmp_path / "project")
    _run(sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path / "dist", ".", cwd=project)
    (wheel,) = (tmp_path / "dist").glob("rowferry-*-py3-none-any.whl")

    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env)
    _run(env / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path)

    where = _run(
        env / "bin" / "python", "-c", "import rowferry; print(rowferry.__file__)", cwd=tmp_path
    )
    assert where.stdout.startswith(str(env)), where.stdout  # the installed copy, not src/
    version = _run(env / "bin" / "rowferry", "--version", cwd=tmp_path)
    assert version.stdout.startswith("rowferry, version ")
    demo = _run(env / "bin" / "rowferry", "demo", "--orders", "50", cwd=tmp_path)
    assert "wrote 30 snapshots in" in demo.stdout, demo.stdout
    assert "check: every finished order has exactly one snapshot" in demo.stdout
    assert (tmp_path / "rowferry-demo.sqlite").is_file()
