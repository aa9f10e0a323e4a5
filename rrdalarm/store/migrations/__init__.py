"""Alembic migrations of the rrdalarm database."""
