"""An https server on 127.0.0.1 with a certificate from a CA made here, serving JSON documents
at paths the test chooses: client ID metadata documents (issue 21). The server under test is
told to trust the CA (OAUTH_CIMD_CA_BUNDLE) and to allow the `localhost` name on a loopback
address (OAUTH_CIMD_ALLOW_PRIVATE_HOSTS), which the deployed stack never allows."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _certificate(subject: str, issuer: x509.Name | None, key: Any, signer: Any, ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


class DocumentServer:
    """`https://localhost:<port>/<path>` → the document set for it (bytes or JSON)."""

    def __init__(self, folder: Path) -> None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("test CA", None, ca_key, ca_key, ca=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate("localhost", ca.subject, key, ca_key, ca=False)
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        chain = folder / "server.pem"
        chain.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.documents: dict[str, bytes] = {}
        self.hits: list[str] = []
        documents, hits = self.documents, self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = documents.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        # A short poll: shutdown() waits up to one poll interval (0.5 s by default, per test).
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"

    def serve(self, path: str, document: Any) -> str:
        """Serve `document` (JSON-encoded unless bytes) at `path`; its URL."""
        self.documents[path] = document if isinstance(document, bytes) else json.dumps(document).encode()
        return self.url(path)

    def client(self, path: str, name: str, redirect_uris: list[str], **extra: Any) -> str:
        """A valid client ID metadata document at `path`; its URL, the client_id."""
        url = self.url(path)
        self.serve(path, {"client_id": url, "client_name": name, "redirect_uris": redirect_uris, **extra})
        return url

    def env(self) -> dict[str, str]:
        return {"OAUTH_CIMD_CA_BUNDLE": str(self.ca_file), "OAUTH_CIMD_ALLOW_PRIVATE_HOSTS": "localhost"}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
