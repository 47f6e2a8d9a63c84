"""Accounts with scrypt-hashed passwords, roles and centre membership; bearer-token sessions."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable

from smartscreen.journal import Database
from smartscreen.review.models import Account, Role, Session
from smartscreen.review.passwords import DUMMY_HASH, check_password_policy, hash_password, verify_password

logger = logging.getLogger(__name__)

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{1,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)
_COLUMNS = "username, centre_id, role, display_name, disabled, created_at_ns"


class AccountError(ValueError):
    """An account operation is not possible (the message says why)."""


class AccountExistsError(AccountError):
    pass


class AccountNotFoundError(AccountError):
    pass


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _account(row: tuple[object, ...]) -> Account:
    username, centre_id, role, display_name, disabled, created_at_ns = row
    return Account(
        username=str(username),
        centre_id=str(centre_id),
        role=Role(str(role)),
        display_name=str(display_name),
        disabled=bool(disabled),
        created_at_ns=int(str(created_at_ns)),
    )


class AccountService:
    """Creates, authenticates and manages accounts; issues and checks session tokens."""

    def __init__(self, db: Database, *, token_ttl_s: int, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._db = db
        self._ttl_ns = token_ttl_s * 1_000_000_000
        self._now = clock_ns

    def create(self, username: str, password: str, *, centre_id: str, role: Role, display_name: str = "") -> Account:
        if not _USERNAME.match(username):
            raise AccountError(f"username {username!r} must match {USERNAME_PATTERN}")
        check_password_policy(password)
        now = self._now()
        password_hash = hash_password(password)
        with self._db.transaction():
            if self._db.query("SELECT 1 FROM review_accounts WHERE username = ?", (username,)):
                raise AccountExistsError(f"account {username!r} already exists")
            self._db.execute(
                "INSERT INTO review_accounts (username, centre_id, role, display_name, password_hash, disabled,"
                " created_at_ns, updated_at_ns) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                (username, centre_id, role.value, display_name or username, password_hash, now, now),
            )
        logger.info("account %s created (%s, centre %s)", username, role.value, centre_id)
        return Account(username, centre_id, role, display_name or username, False, now)

    def get(self, username: str) -> Account | None:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM review_accounts WHERE username = ?", (username,))
        return _account(rows[0]) if rows else None

    def list(self, centre_id: str | None = None) -> list[Account]:
        if centre_id is None:
            rows = self._db.query(f"SELECT {_COLUMNS} FROM review_accounts ORDER BY username")
        else:
            rows = self._db.query(
                f"SELECT {_COLUMNS} FROM review_accounts WHERE centre_id = ? ORDER BY username", (centre_id,)
            )
        return [_account(r) for r in rows]

    def update(
        self,
        username: str,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
        password: str | None = None,
        display_name: str | None = None,
    ) -> Account:
        if password is not None:
            check_password_policy(password)
        with self._db.transaction():
            current = self.get(username)
            if current is None:
                raise AccountNotFoundError(f"no account {username!r}")
            now = self._now()
            if role is not None:
                self._db.execute(
                    "UPDATE review_accounts SET role = ?, updated_at_ns = ? WHERE username = ?",
                    (role.value, now, username),
                )
            if display_name is not None:
                self._db.execute(
                    "UPDATE review_accounts SET display_name = ?, updated_at_ns = ? WHERE username = ?",
                    (display_name, now, username),
                )
            if disabled is not None:
                self._db.execute(
                    "UPDATE review_accounts SET disabled = ?, updated_at_ns = ? WHERE username = ?",
                    (int(disabled), now, username),
                )
            if password is not None:
                self._db.execute(
                    "UPDATE review_accounts SET password_hash = ?, updated_at_ns = ? WHERE username = ?",
                    (hash_password(password), now, username),
                )
            if disabled or password is not None or role is not None:  # old tokens stop working
                self._db.execute("UPDATE review_sessions SET revoked = 1 WHERE username = ?", (username,))
            updated = self.get(username)
        assert updated is not None
        return updated

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account if the password matches and it is enabled; the same work is done either way."""
        rows = self._db.query(f"SELECT {_COLUMNS}, password_hash FROM review_accounts WHERE username = ?", (username,))
        if not rows:
            verify_password(password, DUMMY_HASH)
            return None
        account = _account(rows[0][:6])
        if not verify_password(password, str(rows[0][6])) or account.disabled:
            return None
        return account

    def login(self, username: str, password: str) -> tuple[str, Session] | None:
        """A new bearer token and its session, or None for bad credentials."""
        account = self.authenticate(username, password)
        if account is None:
            return None
        token = secrets.token_urlsafe(32)
        digest = token_digest(token)
        now = self._now()
        expires = now + self._ttl_ns
        # sessions that can never be used again go at each login, so the table stays the size of the live ones
        self._db.execute("DELETE FROM review_sessions WHERE expires_at_ns <= ? OR revoked = 1", (now,))
        self._db.execute(
            "INSERT INTO review_sessions (token_sha256, username, created_at_ns, expires_at_ns, revoked)"
            " VALUES (?, ?, ?, ?, 0)",
            (digest, account.username, now, expires),
        )
        return token, Session(account=account, token_sha256=digest, expires_at_ns=expires)

    def session_for(self, token: str) -> Session | None:
        """The live session of a token, or None (unknown, expired, revoked, or account disabled)."""
        if not token or len(token) > 128:
            return None
        digest = token_digest(token)
        rows = self._db.query(
            "SELECT a.username, a.centre_id, a.role, a.display_name, a.disabled, a.created_at_ns, s.expires_at_ns"
            " FROM review_sessions s JOIN review_accounts a ON a.username = s.username"
            " WHERE s.token_sha256 = ? AND s.revoked = 0",
            (digest,),
        )
        if not rows:
            return None
        account = _account(rows[0][:6])
        expires = int(rows[0][6])
        if account.disabled or expires <= self._now():
            return None
        return Session(account=account, token_sha256=digest, expires_at_ns=expires)

    def logout(self, session: Session) -> None:
        self._db.execute("UPDATE review_sessions SET revoked = 1 WHERE token_sha256 = ?", (session.token_sha256,))


DEMO_PASSWORD_BYTES = 9


def seed_demo_accounts(accounts: AccountService, centre_id: str) -> dict[str, tuple[Role, str]]:
    """Create demo accounts (operator1, operator2, supervisor, admin) with fresh random passwords.

    Returns ``{username: (role, password)}`` for the accounts created now; existing ones are left alone.
    """
    created: dict[str, tuple[Role, str]] = {}
    for username, role in (
        ("operator1", Role.OPERATOR),
        ("operator2", Role.OPERATOR),
        ("supervisor", Role.SUPERVISOR),
        ("admin", Role.ADMIN),
    ):
        if accounts.get(username) is not None:
            continue
        password = secrets.token_urlsafe(DEMO_PASSWORD_BYTES)
        accounts.create(username, password, centre_id=centre_id, role=role)
        created[username] = (role, password)
    return created
