"""Password hashing with scrypt (standard library, memory-hard, no network, no extra package).

Stored form: ``scrypt$<log2 n>$<r>$<p>$<salt hex>$<hash hex>``; parameters travel with the
hash so they can be raised later without invalidating existing accounts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_LOG2_N = 14  # n = 16384, r = 8: 16 MiB per hash, ~50 ms on one core
_R = 8
_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


class PasswordPolicyError(ValueError):
    """A new password does not meet the policy."""


def check_password_policy(password: str) -> None:
    """Raise PasswordPolicyError naming the problem."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=_KEY_BYTES
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _derive(password, salt, _LOG2_N, _R, _P)
    return f"scrypt${_LOG2_N}${_R}${_P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a stored hash; False for a malformed hash."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    except ValueError:
        return False
    if not (10 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
        return False
    return hmac.compare_digest(_derive(password, salt, log2_n, r, p), expected)


# A hash of a random password: login with an unknown user spends the same time as with a known one.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
