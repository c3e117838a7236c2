"""Request and response bodies of the management API (pydantic v2).

Only the HTTP handlers import this module; the authorizer stays free of pydantic.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from apikeys.names import NAME_MAX, checked

KeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX),
    AfterValidator(checked),
    Field(
        description="A descriptive name, 1-64 characters after trimming, stored in Unicode NFC. Refused: control "
        "characters, format characters (zero-width, joiners, U+FEFF, soft hyphen, bidirectional controls, tag "
        "characters), line and paragraph separators, private-use characters, and a name with no visible character.",
        examples=["Zapier Integration"],
    ),
]


ScopeList = Annotated[
    list[str],
    Field(
        description='Distinct scope names from the catalogue (GET /scopes), or ["*"] for full access. '
        "Omitted means full access.",
        examples=[["whoami"], ["*"]],
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
    scopes: ScopeList | None = None

    @model_validator(mode="after")
    def _scopes_not_null(self) -> CreateKeyRequest:
        if "scopes" in self.model_fields_set and self.scopes is None:
            raise ValueError('scopes must not be null; omit it (or use ["*"]) for full access')
        return self


class RenameKeyRequest(_Strict):
    """A new name, new scopes, or both; a field that is present may not be null."""

    name: KeyName | None = None
    scopes: ScopeList | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> RenameKeyRequest:
        given = self.model_fields_set
        if not given:
            raise ValueError("give name, scopes, or both")
        for field in given:
            if getattr(self, field) is None:
                raise ValueError(f"{field} must not be null")
        return self


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
    created_by: str | None = Field(
        description="Who created the key: the signed-in user's email, else their Cognito username, else their "
        "`sub`; for a rolled key, who rolled it; for an OAuth connection's key, the user who allowed it. null for "
        "keys created before this was recorded.",
        examples=["ana@example.com"],
    )
    last_used_at: str | None = Field(description="ISO 8601, UTC; null until first use. Updated at most once a minute.")
    requests_30d: int = Field(
        ge=0,
        description="Requests the key was let through (authorizations granted) in the last 30 UTC days, today "
        "included. Per day: GET /keys/{key_id}/usage.",
        examples=[1234],
    )
    expires_at: str | None = Field(description="ISO 8601, UTC; null if the key does not expire.")
    status: Literal["active", "expired", "rolling"] = Field(
        description="`rolling`: replaced by a roll, working until `expires_at`; `expired`: refused, removed soon."
    )
    scopes: list[str] = Field(
        description='The scopes the key may use, in catalogue order, or ["*"] for full access.',
        examples=[["whoami", "mcp"], ["*"]],
    )
    connection: ConnectionOut | None = Field(
        default=None,
        description="null, or the MCP client that holds this key because a user connected it with OAuth.",
    )


class ConnectionOut(BaseModel):
    client_id: str = Field(description="The OAuth client's id: one we issued, or its metadata document's URL.")
    client_name: str = Field(examples=["ChatGPT"])
    redirect_host: str = Field(description="Where the client received its authorization.", examples=["chatgpt.com"])


class CreatedKeyOut(KeyOut):
    key: str = Field(description="The full API key. Shown in this response only; store it now.")


class KeyListOut(BaseModel):
    keys: list[KeyOut]
    plan: str | None
    key_limit: int
    key_count: int


class DailyRequestsOut(BaseModel):
    """Each listed key's requests per day over the 30 days `requests_30d` sums (issue 23): what the
    console draws, read by the same Query, so the list costs no more reads for it."""

    days: list[str] = Field(
        description="The last 30 UTC days, YYYY-MM-DD, oldest first, the last one today.",
        examples=[["2027-02-28", "2027-03-01"]],
    )
    keys: dict[str, list[int]] = Field(
        description="By key id, every listed key: its requests on each of `days`, in the same order.",
        examples=[{"key_0SXg9cFh1a4Zb0qR7mWt": [0, 12]}],
    )


class KeyListWithDaysOut(KeyListOut):
    """GET /keys: the list, and each key's 30 days of requests day by day."""

    requests_by_day: DailyRequestsOut


class DayRequestsOut(BaseModel):
    date: str = Field(description="A UTC day, YYYY-MM-DD.", examples=["2027-03-01"])
    requests: int = Field(ge=0, description="Requests the key was let through that day (authorizations granted).")


class KeyUsageOut(BaseModel):
    """GET /keys/{key_id}/usage and the MCP tool get_api_key_usage."""

    key_id: str = Field(examples=["key_0SXg9cFh1a4Zb0qR7mWt"])
    days: list[DayRequestsOut] = Field(
        description="Exactly `days` entries, oldest first, the last one today (UTC); a day without requests is 0."
    )
    total: int = Field(ge=0, description="The sum of `days`' requests.")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class WhoAmIOut(BaseModel):
    """The calling API key, as the authorizer established it (GET /v1/whoami, MCP `whoami`)."""

    account_id: str = Field(description="The account the API key belongs to.")
    key_id: str = Field(description="The id of the API key making this call.")
    plan: str = Field(description="The account's plan (pro, advanced, agency).")
    scopes: list[str] = Field(description='What the key may do: scope names, or ["*"] for full access.')


class ScopeOut(BaseModel):
    name: str = Field(examples=["whoami"])
    routes: list[str] = Field(
        description="`METHOD /path` patterns the scope grants; empty for a capability backends check.",
        examples=[["GET /v1/whoami"]],
    )


class ScopeCatalogueOut(BaseModel):
    scopes: list[ScopeOut]


class RevokeCredentialsRequest(_Strict):
    credentials: list[Annotated[str, StringConstraints(max_length=200)]] = Field(
        min_length=1,
        max_length=100,
        description="1-100 credentials found where they should not be; each live key among them is revoked.",
        examples=[["ot_..."]],
    )


class EmptyOut(BaseModel):
    """`{}`: the answer reveals nothing about which credentials existed."""


class RevocationOut(BaseModel):
    key_id: str
    name: str
    reason: Literal["leaked", "reported"] = Field(
        description="`leaked`: found in public by a secret scanner; `reported`: sent to POST /v1/credentials/revoke."
    )
    revoked_at: str = Field(description="ISO 8601, UTC.")
    url: str = Field(description="Where it was found (empty when the report did not say).")
    source: str = Field(description="What kind of place it was found in, e.g. `content`, `commit`, `issue`.")


class RevocationListOut(BaseModel):
    revocations: list[RevocationOut] = Field(
        description="Keys revoked as leaked or reported in the last 30 days, newest first."
    )


class ScanLabelOut(BaseModel):
    token_hash: str = Field(description="SHA-256 hex of the token.")
    token_type: str
    label: Literal["true_positive", "false_positive"]


# -- OAuth consent (issue 21) --------------------------------------------------------------


class ConsentOut(BaseModel):
    client_name: str = Field(description="The name the client gave itself, made display-safe.")
    client_id: str = Field(description="Its client id: an id we issued, or the https URL of its metadata document.")
    client_kind: str = Field(description="`registered` (dynamic registration) or `metadata` (a metadata URL).")
    redirect_uri: str
    redirect_host: str = Field(description="Where the answer is sent: show it, it is who gets the key.")
    scopes: list[str]
    key_name: str = Field(description="The name the connection's key will have in Settings → API Keys.")


class ConsentRequest(_Strict):
    approve: bool
    scopes: ScopeList | None = None


class RedirectOut(BaseModel):
    redirect_to: str = Field(description="Send the browser here: the client's redirect URI with code or error.")
