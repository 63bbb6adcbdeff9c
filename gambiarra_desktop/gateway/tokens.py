"""Admin tokens: JWTs (HS256) signed with a secret the hub makes on first run.

Only HS256 is accepted when reading one back, so a token with ``alg: none`` or any other
algorithm is refused before its claims are looked at. Each token carries the admin's
token epoch: changing the password bumps it, and every token issued before stops working.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from gambiarra_desktop.gateway.errors import InvalidTokenError
from gambiarra_desktop.hub.data_files import read_or_create

JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name.
ALGORITHM = "HS256"
ISSUER = "gambiarra-hub"
TOKEN_LIFETIME_S = 12 * 3600
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True, slots=True)
class TokenClaims:
    username: str
    role: str
    epoch: int


def load_or_create_signing_key(data_dir: Path | None) -> str:
    """The signing secret, kept owner-only in the data dir (random per run without one)."""
    if data_dir is None:
        return secrets.token_urlsafe(48)
    return read_or_create(data_dir / JWT_SECRET_FILE, lambda: secrets.token_urlsafe(48))


class TokenSigner:
    def __init__(self, key: str, lifetime_s: int = TOKEN_LIFETIME_S) -> None:
        self._key = key
        self.lifetime_s = lifetime_s

    def issue(self, username: str, role: str, epoch: int) -> str:
        now = int(time.time())
        claims = {"sub": username, "role": role, "epoch": epoch, "iss": ISSUER,
                  "iat": now, "exp": now + self.lifetime_s}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def read(self, token: str) -> TokenClaims:
        """The token's claims; :class:`InvalidTokenError` for anything not issued by us
        (forged, another algorithm, ``alg: none``) or no longer valid (expired)."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidTokenError("the token is too long")
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "iss"]})
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError("the token has expired; log in again") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidTokenError("the token is not one this hub issued") from exc
        username, role, epoch = claims.get("sub"), claims.get("role"), claims.get("epoch")
        if not isinstance(username, str) or not isinstance(role, str) or not isinstance(
                epoch, int):
            raise InvalidTokenError("the token is not one this hub issued")
        return TokenClaims(username, role, epoch)
