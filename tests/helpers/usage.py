"""Usage items exactly as the authorizer's side writes them (issue 23; the layout is in store.py):
`pk = ACCOUNT#<account>`, `sk = USAGE#<YYYY-MM-DD>`, a Number `n_<key_id>` per key, and `ttl` the
day's 00:00 UTC + 91 days. Tests of the read side seed known counts with them, writer or not."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3

RETENTION = timedelta(days=91)


def usage_item(account_id: str, day: str, counts: Mapping[str, int]) -> dict[str, Any]:
    midnight = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
    return {
        "pk": {"S": f"ACCOUNT#{account_id}"},
        "sk": {"S": f"USAGE#{day}"},
        "ttl": {"N": str(int((midnight + RETENTION).timestamp()))},
        **{f"n_{key_id}": {"N": str(count)} for key_id, count in counts.items()},
    }


def seed_usage(
    account_id: str, days: Mapping[str, Mapping[str, int]], table: str | None = None, client: Any = None
) -> None:
    """Write one usage item per day (replacing what that day held): `{day: {key_id: count}}`."""
    from apikeys.config import get_settings

    client = client or boto3.client("dynamodb")
    for day, counts in days.items():
        client.put_item(TableName=table or get_settings().table_name, Item=usage_item(account_id, day, counts))


def day(moment: datetime, back: int = 0) -> str:
    """The UTC day `back` days before `moment`'s, as YYYY-MM-DD."""
    return (moment.astimezone(UTC).date() - timedelta(days=back)).isoformat()
