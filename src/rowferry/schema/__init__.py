"""The real tables: read from the catalog and checked against a migration."""
