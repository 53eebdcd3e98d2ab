"""The documentation stays in step with the code.

Regenerate docs/cli.md after changing the CLI: ``python -m tests.test_docs``.
"""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

import rowferry
from rowferry.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"
COMMANDS = [
    "run",
    "status",
    "plan",
    "verify",
    "reset",
    "pause",
    "resume",
    "cancel",
    "set",
    "quarantine",
    "demo",
    "lambda",
    "lambda package",
    "lambda simulate",
]


def render_cli_reference() -> str:
    parts = [
        "# rowferry command reference\n",
        "Generated from `--help` by `python -m tests.test_docs`; a test keeps it in step.\n",
    ]
    for command in [None, *COMMANDS]:
        args = [*command.split(), "--help"] if command else ["--help"]
        text = CliRunner().invoke(main, args, prog_name="rowferry", terminal_width=100).output
        parts.append(f"## `rowferry{' ' + command if command else ''}`\n\n```text\n{text}```\n")
    return "\n".join(parts)


def test_cli_reference_matches_help() -> None:
    assert CLI_DOC.read_text() == render_cli_reference(), "run: python -m tests.test_docs"


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = "python -m pip install -e '.[test]' && python -m pytest"
    assert command in readme.split("\n## ")[0] and command in ci


def test_readme_starts_with_the_demo_command() -> None:
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert first_block is not None and "rowferry demo" in first_block.group(1)


def test_public_names_are_exactly_all() -> None:
    import inspect

    public = {
        name
        for name in dir(rowferry)
        if not name.startswith("_") and not inspect.ismodule(getattr(rowferry, name))
    }
    assert public == set(rowferry.__all__) - {"__version__"}
    assert all(hasattr(rowferry, n) for n in rowferry.__all__)


if __name__ == "__main__":
    CLI_DOC.parent.mkdir(exist_ok=True)
    CLI_DOC.write_text(render_cli_reference())
    print(f"wrote {CLI_DOC}")


def test_type_fidelity_doc_is_the_code_table() -> None:
    from rowferry.dialects import fidelity

    text = (Path(__file__).parent.parent / "docs" / "type-fidelity.md").read_text(encoding="utf-8")
    assert text.endswith(fidelity.markdown())
    assert all(rule.outcome in ("exact", "converted", "refused") for rule in fidelity.TABLE)
