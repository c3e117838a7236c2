"""Request and response bodies of the management API (pydantic v2).

Only the HTTP handlers import this module; the authorizer stays free of pydantic.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

NAME_MAX = 64


class CreateKeyRequest(BaseModel):
    """Unknown fields are refused, as Stripe does, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)] = Field(
        description="A descriptive name, 1-64 characters after trimming, no control characters.",
        examples=["Zapier Integration"],
    )

    @field_validator("name")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
            raise ValueError("must not contain control characters")
        return value


class KeyOut(BaseModel):
    id: str = Field(examples=["key_0SXg9cFh1a4Zb0qR7mWt"])
    name: str
    display: str = Field(description="Masked key: the prefix and at most 8 characters of the secret.")
    created_at: str = Field(description="ISO 8601, UTC.")
    last_used_at: str | None = Field(description="ISO 8601, UTC; null until first use. Updated at most once a minute.")


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
