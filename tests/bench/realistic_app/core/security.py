"""Password hashing and access tokens."""

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from app.core.config import settings

ALGORITHM = "HS256"

# scrypt from the standard library: a memory-hard KDF with no native dependency to build in the image.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, hashed: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = hashed.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate.hex(), digest)


def create_token(subject: str | Any, expires_delta: timedelta, purpose: str = "access") -> str:
    now = datetime.now(UTC)
    claims = {"sub": str(subject), "iat": now, "exp": now + expires_delta, "purpose": purpose}
    return jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)


def create_access_token(subject: str | Any) -> str:
    return create_token(subject, timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES))


def create_password_reset_token(email: str) -> str:
    return create_token(email, timedelta(hours=settings.PASSWORD_RESET_EXPIRE_HOURS), purpose="password-reset")


def decode_token(token: str, purpose: str = "access") -> dict[str, Any]:
    """The token's claims; raises jwt.InvalidTokenError if it is forged, expired or meant for something else."""
    claims = jwt.decode(token, settings.SECRET_KEY, algorithms=[ALGORITHM])
    if claims.get("purpose") != purpose:
        raise jwt.InvalidTokenError(f"token is for {claims.get('purpose')!r}, not {purpose!r}")
    return claims
