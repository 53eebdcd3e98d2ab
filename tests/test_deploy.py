"""Deployment: the SAM template passes cfn-lint and fits the handler; the zip is self-contained.

Building the zip downloads wheels from PyPI (pip's cache makes it fast after the first time).
It is built once for this machine's Python version, unpacked, and the handler is run from it in
a Python without site-packages, against MariaDB and PostgreSQL: the manylinux wheels (psycopg's
libpq, SQLAlchemy's extensions) load, and nothing outside the zip is needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import decode
from click.testing import CliRunner

from harness import reference
from rowferry.aws.config import LambdaConfig
from rowferry.aws.package import DEFAULT_PYTHON
from rowferry.cli.main import main
from rowferry.demo import order_history

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "template.yaml"
LOCAL_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_the_template_passes_cfn_lint() -> None:
    assert [str(m) for m in lint_file(TEMPLATE)] == []


def template_function() -> dict[str, Any]:
    template, problems = decode(str(TEMPLATE))
    assert not problems and template is not None
    return dict(template["Resources"]["MigrationFunction"]["Properties"])


def test_the_template_runs_the_handler_every_minute_within_lambdas_limits() -> None:
    function = template_function()
    assert function["Handler"] == "rowferry.aws.handler.handler"
    assert function["Runtime"] == f"python{DEFAULT_PYTHON}"  # what 'lambda package' builds for
    assert (function["Timeout"], function["MemorySize"]) == (30, 1024)
    (event,) = function["Events"].values()
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["ScheduleExpression"] == {"Ref": "ScheduleExpression"}


def test_the_template_sets_only_variables_the_handler_reads() -> None:
    names = set(template_function()["Environment"]["Variables"])
    rowferry_names = {n for n in names if n.startswith("ROWFERRY_")}
    documented = LambdaConfig.__module__
    text = sys.modules[documented].__doc__ or ""
    assert rowferry_names and all(f"``{n}``" in text for n in rowferry_names)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bundle") / "rowferry-lambda.zip"
    args = ["lambda", "package", order_history.__file__, "-o", str(out), "--json"]
    done = CliRunner().invoke(main, [*args, "--python-version", LOCAL_PYTHON])
    assert done.exit_code == 0, done.output
    return out, json.loads(done.output)


def test_the_zip_holds_rowferry_the_migration_and_manylinux_wheels(
    bundle: tuple[Path, dict[str, Any]],
) -> None:
    path, report = bundle
    names = zipfile.ZipFile(path).namelist()
    assert "rowferry/aws/handler.py" in names and "order_history.py" in names
    assert any(n.startswith("psycopg_binary/") and ".so" in n for n in names)
    assert any(n.startswith("sqlalchemy/") and n.endswith(".so") for n in names)
    assert any(n.startswith("aws_lambda_powertools/") for n in names)
    assert not any(n.split("/")[0] in ("click", "rich", "boto3", "botocore") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert report["platform_tags"] and all(
        "manylinux" in tag for tag in report["platform_tags"].values()
    )
    assert 1 < report["megabytes"] < 50 and report["handler_module"] == "order_history"


@pytest.mark.parametrize("kind", ["mariadb", "postgresql"])
def test_the_handler_runs_from_the_unpacked_zip_alone(
    bundle: tuple[Path, dict[str, Any]], tmp_path: Path, make_db: Callable[[str], str], kind: str
) -> None:
    url = make_db(kind)
    reference.build(url, orders=100)
    root = tmp_path / "task"
    zipfile.ZipFile(bundle[0]).extractall(root)
    code = (
        f"import sys; sys.path.insert(0, {str(root)!r}); import json, rowferry.aws.handler as h; "
        "from rowferry.aws.context import FakeContext; "
        "r = h.handler({}, FakeContext.with_timeout(20)); "
        "assert h.__file__.startswith(sys.path[0]), h.__file__; "
        "print('RESULT', json.dumps(r))"
    )
    env = {"ROWFERRY_MIGRATION": "order_history:migration", "ROWFERRY_SOURCE": url}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["status"] == "done", result
    assert reference.snapshots(url) == reference.expected_snapshots(url)
