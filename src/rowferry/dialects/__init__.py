"""Everything that differs between SQLite, MySQL/MariaDB and PostgreSQL, and opening them."""
