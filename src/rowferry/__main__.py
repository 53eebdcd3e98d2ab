"""``python -m rowferry`` is the ``rowferry`` command."""

from rowferry.cli.main import main

main(prog_name="rowferry")
