"""Database access: connection pool, migrations."""
