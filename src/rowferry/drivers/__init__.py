"""Fast paths into driver internals: PyMySQL rows, multi-row INSERTs, COPY."""
