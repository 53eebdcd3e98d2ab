"""The ``rowferry`` command."""
