"""A stand-in for GitHub's secret scanning public keys: a P-256 key pair generated at run time,
served in GitHub's JSON shape by a stdlib HTTP server on 127.0.0.1, and the signing of
reports as GitHub signs them (base64 DER ECDSA, SHA-256, over the raw body)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class GitHubKeys:
    def __init__(self) -> None:
        self.private: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.ids: dict[str, str] = {}  # a test's name for a key -> its GitHub-shaped identifier
        self.served: list[str] = []  # names of the keys currently published
        self.requests = 0
        self.fail = False
        self.redirect_to: str | None = None  # answer 302 to this URL, from any other URL, instead of the keys
        self.extra: list[dict[str, Any]] = []  # entries served after the generated keys' (other kinds of key)
        self.raw: bytes | None = None  # served instead of the document
        self.delay = 0.0  # seconds before the answer
        self.announced_extra = 0  # bytes the Content-Length announces beyond the body
        self.stall = 0.0  # seconds the connection stays open after the body
        self.accepts: list[str | None] = []  # each request's Accept header
        self.add("key-1")
        keys = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                keys.requests += 1
                keys.accepts.append(self.headers.get("Accept"))
                time.sleep(keys.delay)
                if keys.redirect_to is not None and keys.redirect_to != f"http://{self.headers['Host']}{self.path}":
                    self.send_response(302)
                    self.send_header("Location", keys.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if keys.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                body = keys.raw if keys.raw is not None else json.dumps(keys.document()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) + keys.announced_extra))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                time.sleep(keys.stall)

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll so close() returns at once (shutdown waits for the loop's next poll).
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/meta/public_keys/secret_scanning"

    def add(self, name: str) -> None:
        """Publish a new key. Its identifier is shaped as GitHub's are (64 hex digits, the SHA-256
        of the public key's DER form); tests call it by `name`."""
        self.private[name] = ec.generate_private_key(ec.SECP256R1())
        der = (
            self.private[name]
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        self.ids[name] = hashlib.sha256(der).hexdigest()
        self.served.append(name)

    def identifier(self, name: str = "key-1") -> str:
        return self.ids[name]

    def document(self) -> dict[str, Any]:
        entries = []
        for name in self.served:
            pem = (
                self.private[name]
                .public_key()
                .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            )
            entries.append(
                {"key_identifier": self.ids[name], "key": pem.decode(), "is_current": name == self.served[-1]}
            )
        return {"public_keys": entries + self.extra}

    def private_pem(self, name: str = "key-1") -> str:
        """The signing key, for a signer in another process (the console's browser test)."""
        return (
            self.private[name]
            .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            .decode()
        )

    def sign(self, body: bytes, name: str = "key-1") -> dict[str, str]:
        signature = self.private[name].sign(body, ec.ECDSA(hashes.SHA256()))
        return {
            "Github-Public-Key-Identifier": self.ids[name],
            "Github-Public-Key-Signature": base64.b64encode(signature).decode(),
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def report(*entries: dict[str, str]) -> bytes:
    return json.dumps(list(entries)).encode()


def finding(
    token: str, url: str = "https://github.com/octo/app/blob/main/.env", source: str = "content"
) -> dict[str, str]:
    return {"token": token, "type": "ot_api_key", "url": url, "source": source}
