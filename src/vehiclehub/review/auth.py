"""Users of the review desk: password hashes, roles, agency scopes, lock-out, sessions.

Passwords are kept as scrypt hashes (RFC 7914, Python's ``hashlib``); a session is a
cookie signed with the configuration's session key (``itsdangerous``) naming the user
and the session's CSRF token, which the desk also sets in the ``csrftoken`` cookie for
the double-submit check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Connection, insert, select, update

from vehiclehub.config import AGENCIES, ReviewSettings
from vehiclehub.errors import CannotStart
from vehiclehub.review.cases import as_utc, mask_personal, now
from vehiclehub.store.review import audit_log, review_users

ROLES = ("viewer", "operator", "supervisor")
#: scrypt cost (N, r, p): about 16 MiB and a few tens of milliseconds per check.
SCRYPT = (2**14, 8, 1)


class UserError(CannotStart):
    """A user cannot be added as asked; the message says why."""


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` of the password, salt and hash in base64."""
    n, r, p = SCRYPT
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Whether the password matches a hash made by :func:`hash_password`."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True)
class User:
    """Who is signed in: a name, a role and the agencies they are scoped to (none: all)."""

    name: str
    role: str
    agencies: tuple[str, ...] = ()

    @property
    def can_decide(self) -> bool:
        return self.role in ("operator", "supervisor")

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


def add_user(conn: Connection, name: str, role: str, agencies: list[str], password: str) -> User:
    """Add a user of the desk (or replace the password, role and scope of one)."""
    if not name or len(name) > 64 or not name.isprintable() or " " in name:
        raise UserError("a user name is 1-64 printable characters without spaces")
    if role not in ROLES:
        raise UserError(f"role: one of {', '.join(ROLES)}")
    unknown = sorted(set(agencies) - set(AGENCIES))
    if unknown:
        raise UserError(f"unknown agency {unknown[0]!r} (one of {', '.join(AGENCIES)})")
    if len(password) < 8:
        raise UserError("a password has at least 8 characters")
    values = {
        "password_hash": hash_password(password),
        "role": role,
        "agencies": ";".join(sorted(set(agencies))),
        "failed_logins": 0,
        "locked_until": None,
    }
    exists = conn.execute(select(review_users.c.id).where(review_users.c.name == name)).first()
    if exists:
        conn.execute(update(review_users).where(review_users.c.name == name).values(**values))
    else:
        conn.execute(insert(review_users).values(name=name, created_at=now(), **values))
    return User(name, role, tuple(sorted(set(agencies))))


def user_named(conn: Connection, name: str) -> User | None:
    row = conn.execute(select(review_users).where(review_users.c.name == name)).first()
    if row is None:
        return None
    return User(row.name, row.role, tuple(a for a in row.agencies.split(";") if a))


def audit(conn: Connection, actor: str, action: str, target: str = "", detail: str = "") -> None:
    """One line of the audit trail; what a visitor typed (a user name) is masked like any
    shown value (ICD §5)."""
    conn.execute(
        insert(audit_log).values(
            at=now(),
            actor=mask_personal(actor)[:64],
            action=action,
            target=mask_personal(target) or None,
            detail=mask_personal(detail) or None,
        )
    )


def log_in(
    conn: Connection, name: str, password: str, settings: ReviewSettings
) -> tuple[User | None, str]:
    """Check a login; the user (or None) and what happened, for the audit trail and the
    answer: ``ok``, ``bad`` (unknown user or wrong password) or ``locked``."""
    row = conn.execute(select(review_users).where(review_users.c.name == name)).first()
    at = now()
    if row is None:
        # The same work as for a real user, so that timing does not tell names apart.
        check_password(password, hash_password("-"))
        audit(conn, name or "-", "login_failed", detail="unknown user")
        return None, "bad"
    locked_until = as_utc(row.locked_until)
    if locked_until is not None and locked_until > at:
        audit(conn, row.name, "login_failed", detail="locked out")
        return None, "locked"
    if not check_password(password, row.password_hash):
        failed = row.failed_logins + 1
        values: dict[str, Any] = {"failed_logins": failed}
        outcome = "bad"
        if failed >= settings.max_failed_logins:
            values = {
                "failed_logins": 0,
                "locked_until": at + timedelta(minutes=settings.lockout_minutes),
            }
            outcome = "locked"
        conn.execute(update(review_users).where(review_users.c.id == row.id).values(**values))
        audit(
            conn,
            row.name,
            "locked_out" if outcome == "locked" else "login_failed",
            detail=f"failed login {failed} of {settings.max_failed_logins}",
        )
        return None, outcome
    conn.execute(
        update(review_users)
        .where(review_users.c.id == row.id)
        .values(failed_logins=0, locked_until=None)
    )
    audit(conn, row.name, "login")
    return User(row.name, row.role, tuple(a for a in row.agencies.split(";") if a)), "ok"


class Sessions:
    """Signed session cookies: ``{"u": name, "c": csrf token}``, valid for a while."""

    def __init__(self, key: bytes, max_age_s: float) -> None:
        self._signer = URLSafeTimedSerializer(key, salt="vehiclehub review session")
        self.max_age_s = max_age_s

    def issue(self, name: str) -> tuple[str, str]:
        """A new session for the user: its cookie value and its CSRF token."""
        token = secrets.token_urlsafe(32)
        return self._signer.dumps({"u": name, "c": token}), token

    def read(self, cookie: str | None) -> tuple[str, str] | None:
        """The user name and CSRF token of a valid session cookie, else None."""
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=int(self.max_age_s))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not {"u", "c"} <= data.keys():
            return None
        return str(data["u"]), str(data["c"])
