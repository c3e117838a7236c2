"""POST /secret-scanning/github: GitHub's secret scanning partner endpoint. A signed report of
keys found in public revokes each live one at once and labels every token."""

from __future__ import annotations

from apikeys.handler import rest_function, wrote  # first: its import pauses the cyclic GC

# isort: split
import base64
import binascii
from typing import Any

from apikeys import scanning
from apikeys.api import documented, json_response
from apikeys.bodies import ScanLabelOut
from apikeys.errors import InvalidRequest

app, lambda_handler = rest_function()


def _raw_body() -> bytes:
    """The body exactly as GitHub signed it (API Gateway passes text bodies through as text)."""
    raw = app.current_event.get("body")
    if not isinstance(raw, str):
        return b""
    if len(raw) > scanning.MAX_REPORT_BYTES * 2:
        raise InvalidRequest(f"Request body exceeds {scanning.MAX_REPORT_BYTES} bytes.")
    if app.current_event.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("Request body is not valid base64.") from None
    return raw.encode("utf-8", "surrogatepass")


@app.post(
    "/secret-scanning/github",
    summary="GitHub secret scanning partner endpoint: revoke leaked keys, label each token",
    description="Signed by GitHub (Github-Public-Key-Identifier, Github-Public-Key-Signature: ECDSA P-256 "
    "SHA-256 over the raw body). Body: a JSON array (at most 1,000) of {token, type, url, source}.",
    **documented(200, "One label per distinct token", list[ScanLabelOut], errors=(InvalidRequest,)),  # type: ignore[arg-type]
)
def report() -> Any:
    event = app.current_event
    identifier = event.headers.get("Github-Public-Key-Identifier")  # any case
    signature = event.headers.get("Github-Public-Key-Signature")
    body = _raw_body()
    if len(body) > scanning.MAX_REPORT_BYTES:
        raise InvalidRequest(f"Request body exceeds {scanning.MAX_REPORT_BYTES} bytes.")
    scanning.verify(identifier, signature, body)  # before anything of the body is read
    labels = scanning.label(scanning.parse_report(body), event.request_context.request_id or "")
    positives = sum(entry["label"] == "true_positive" for entry in labels)
    wrote("LeakReport", "secret scanning report", tokens=len(labels), true_positives=positives)
    return json_response(200, labels)
