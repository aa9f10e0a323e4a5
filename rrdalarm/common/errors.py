"""Errors that the faces (CLI, web) report as one line, importable without what raises them."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be opened or used; the message is one line."""


class RequeueError(Exception):
    """A delivery named for requeueing is unknown or not dead; the message is one line."""


class BadDatabaseURL(StoreError):
    """The database URL is no URL, or names a database kind or driver that is not there: a configuration mistake."""
