"""Request and response bodies of the management API (pydantic v2).

Only the HTTP handlers import this module; the authorizer stays free of pydantic.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

NAME_MAX = 64


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


KeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX),
    AfterValidator(_no_control_characters),
    Field(
        description="A descriptive name, 1-64 characters after trimming, no control characters.",
        examples=["Zapier Integration"],
    ),
]


class _Strict(BaseModel):
    """Unknown fields are refused, as Stripe does, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", strict=True)


class CreateKeyRequest(_Strict):
    name: KeyName
    expires_in_days: int | None = Field(
        default=None, ge=1, le=365, description="Optional lifetime in days (1-365); the key stops working then."
    )


class RenameKeyRequest(_Strict):
    name: KeyName


class RollKeyRequest(_Strict):
    grace_period_seconds: int = Field(
        default=0,
        ge=0,
        le=604800,
        description="How long the old key keeps working (0-604800 s, up to 7 days). 0 revokes it at once.",
    )


class KeyOut(BaseModel):
    id: str = Field(examples=["key_0SXg9cFh1a4Zb0qR7mWt"])
    name: str
    display: str = Field(description="Masked key: the prefix and at most 8 characters of the secret.")
    created_at: str = Field(description="ISO 8601, UTC.")
    last_used_at: str | None = Field(description="ISO 8601, UTC; null until first use. Updated at most once a minute.")
    expires_at: str | None = Field(description="ISO 8601, UTC; null if the key does not expire.")
    status: Literal["active", "expired", "rolling"] = Field(
        description="`rolling`: replaced by a roll, working until `expires_at`; `expired`: refused, removed soon."
    )


class CreatedKeyOut(KeyOut):
    key: str = Field(description="The full API key. Shown in this response only; store it now.")


class KeyListOut(BaseModel):
    keys: list[KeyOut]
    plan: str | None
    key_limit: int
    key_count: int


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class WhoAmIOut(BaseModel):
    account_id: str
    key_id: str
    plan: str
