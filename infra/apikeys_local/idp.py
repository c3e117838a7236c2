"""The local identity provider that stands in for Cognito: RS256 JWTs signed with a key pair
generated on first use in the local state directory (gitignored, never committed).

Nothing of this exists in the deployed stack, where Cognito signs and API Gateway verifies.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "apikeys-local"
AUDIENCE = "apikeys-local-console"
DEFAULT_TTL_SECONDS = 12 * 3600


class LocalIdentityProvider:
    def __init__(self, state_dir: Path) -> None:
        self.key_file = state_dir / "idp-signing-key.pem"
        self._private_key = self._load_or_create()
        self._public_key = self._private_key.public_key()

    def _load_or_create(self) -> rsa.RSAPrivateKey:
        if not self.key_file.exists():
            self.key_file.parent.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            tmp = self.key_file.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            try:
                os.link(tmp, self.key_file)  # first writer wins; a concurrent first run reads its key
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        loaded = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise TypeError(f"{self.key_file} is not an RSA private key")
        return loaded

    def mint(
        self, account: str, claim: str = "sub", ttl_seconds: int = DEFAULT_TTL_SECONDS, email: str | None = None
    ) -> str:
        """An ID token like Cognito's, with the account id in `claim` (ACCOUNT_ID_CLAIM), and a
        verified `email` when given (the key object's `created_by` shows it, issue 23)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "token_use": "id",
            "sub": account,
            "cognito:username": account,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        claims[claim] = account
        if email is not None:
            claims |= {"email": email, "email_verified": True}
        return jwt.encode(claims, self._private_key, algorithm="RS256")

    def mint_access(self, account: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
        """An access token like Cognito's: `client_id` instead of `aud`, scopes, no custom
        attributes. API Gateway's Cognito authorizer accepts it; the management handlers
        refuse it (401), as they accept ID tokens only."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "client_id": AUDIENCE,
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "sub": account,
            "username": account,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        return jwt.encode(claims, self._private_key, algorithm="RS256")

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid token, ID or access, as API Gateway's Cognito authorizer
        checks them (signature, issuer, expiry, and `aud` or `client_id`); None for unsigned,
        expired, tampered or foreign ones."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "iss"], "verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("token_use") == "id" and claims.get("aud") == AUDIENCE:
            return claims
        if claims.get("token_use") == "access" and claims.get("client_id") == AUDIENCE and "aud" not in claims:
            return claims
        return None
