"""Users of the web pages: argon2 password hashes, roles, and the rules names and passwords follow.

No default account exists; `rrdalarm user add` makes the first one.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rrdalarm.access.sessions import stamp
from rrdalarm.store.database import Store, User

ROLES = ("admin", "viewer")
MIN_PASSWORD = 10
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when a name is unknown, so that a login takes as long either way (made when first needed)."""
    return _hasher.hash(secrets.token_urlsafe(16))


class UserError(Exception):
    """A user command that cannot be done; one line."""


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str
    created_at: int
    password_stamp: str = ""
    """A fingerprint of the password hash: a session opened under an older password no longer matches."""


def name_problem(name: str) -> str | None:
    if not _NAME_RE.match(name):
        return "a user name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
    return None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    return None


def random_password() -> str:
    return secrets.token_urlsafe(15)


def _account(u: User) -> Account:
    return Account(u.id, u.name, u.role, u.created_at, stamp(u.password_hash))


def add_user(store: Store, name: str, password: str, role: str) -> Account:
    for problem in (name_problem(name), password_problem(password),
                    None if role in ROLES else f"role must be one of {', '.join(ROLES)}"):
        if problem:
            raise UserError(problem)
    user = store.add_user(name, _hasher.hash(password), role, int(time.time()))
    if user is None:
        raise UserError(f"user {name!r} exists already")
    return _account(user)


def set_password(store: Store, name: str, password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise UserError(problem)
    if not store.set_password_hash(name, _hasher.hash(password)):
        raise UserError(f"no user {name!r}")


def delete_user(store: Store, name: str) -> None:
    if not store.delete_user(name):
        raise UserError(f"no user {name!r}")


def list_users(store: Store) -> list[Account]:
    return [_account(u) for u in store.users()]


def get_user(store: Store, user_id: int) -> Account | None:
    user = store.user(user_id)
    return _account(user) if user else None


def authenticate(store: Store, name: str, password: str) -> Account | None:
    """The account when name and password match; None otherwise (in about the same time)."""
    user = store.user_named(name)
    stored = user.password_hash if user else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(stored):
        # Only over the hash just checked: a password changed meanwhile stays changed.
        fresh = _hasher.hash(password)
        if store.set_password_hash(name, fresh, replacing=stored):
            user.password_hash = fresh
    return _account(user)
