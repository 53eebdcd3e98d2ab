"""``python -m rowferry`` is the ``rowferry`` command."""

from .cli import main

main(prog_name="rowferry")
