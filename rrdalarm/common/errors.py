"""Errors that the faces (CLI, web) report as one line, importable without what raises them."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be opened or used; the message is one line."""


class BadDatabaseURL(StoreError):
    """The database URL is no URL, or names a database kind or driver that is not there: a configuration mistake."""
