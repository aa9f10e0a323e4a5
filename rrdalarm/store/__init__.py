"""The SQL store (schema, queries, Alembic migrations applied on open) and the check's own statistics RRDs."""
