"""Domain errors. Each carries the public error code and HTTP status of the contract,
so every entry point maps them the same way and none leaks internals."""

from __future__ import annotations


class ApiKeyError(Exception):
    """Base of every error the contract names; raise a subclass, never this class itself."""

    code: str
    status: int

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InternalError(ApiKeyError):
    """Anything else went wrong; the body names no internals."""

    code, status = "internal_error", 500


class InvalidRequest(ApiKeyError):
    """Malformed JSON, not an object, bad or missing field, unknown field, body over 10 KB."""

    code, status = "invalid_request", 400


class PayloadTooLarge(ApiKeyError):
    """A body over 10 KB on POST /mcp, refused before the MCP SDK reads it (MCP clients expect the
    SDK's own 413; the other routes keep answering 400 `invalid_request`)."""

    code, status = "payload_too_large", 413


class Unauthorized(ApiKeyError):
    """Missing, invalid, expired or revoked credentials."""

    code, status = "unauthorized", 401


class KeyLimitReached(ApiKeyError):
    """The plan's key limit is reached; the message names the plan to upgrade to."""

    code, status = "key_limit_reached", 403


class NotFound(ApiKeyError):
    """No such key in the caller's account."""

    code, status = "not_found", 404


class ServiceUnavailable(ApiKeyError):
    """DynamoDB still failing after the SDK's retries and ours; the client should retry."""

    code, status = "service_unavailable", 503
    retry_after_seconds = 1


class Conflict(ApiKeyError):
    """The key's state forbids the change (e.g. rolling a key already in its grace period)."""

    code, status = "conflict", 409
