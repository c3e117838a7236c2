"""Run daily by EventBridge Scheduler (template.yaml, ExpiryNoticesFunction's `Daily` schedule):
an ApiKeyExpiring audit event for every key due a warning, ExpiryNoticeDays before its expiry.

The event is `{"scheduled_time": "<aws.scheduler.scheduled-time>"}` as the Scheduler renders it;
without it the run is today's (`apikeys-local schedule ExpiryNoticesFunction --at …` sets it).
The Scheduler invokes asynchronously: a run that fails (cut short by its deadline, DynamoDB
unavailable) is retried by Lambda, then lands in ExpiryNoticesFailuresQueue, which is alarmed.
"""

from __future__ import annotations

from apikeys.handler import invoked_function, wrote  # first: its import pauses the cyclic GC

# isort: split
from typing import Any

from apikeys import expiry_notices
from apikeys.expiry_notices import Notice


def _sent(notice: Notice) -> None:
    wrote(
        "ExpiryNoticeSent",
        "expiry notice sent",
        account_id=notice.account_id,
        key_id=notice.key_id,
        days_left=notice.days_left,
    )


def run(event: Any, context: Any) -> dict[str, Any]:
    result = expiry_notices.send_due(expiry_notices.run_day(event), sent=_sent)
    return {"day": result.day.isoformat(), "checked": result.checked, "sent": len(result.sent)}


lambda_handler = invoked_function(run)
