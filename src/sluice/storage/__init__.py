"""Storage: tables, migrations and the SQLite/PostgreSQL specifics."""
