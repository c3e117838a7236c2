"""One-off migration for issue 24 item 5: key items written before the expiry notices have no
`expires_on`, so the daily run never finds them. This adds it to every live, expiring key that
lacks it (one Scan of the table; keys changed meanwhile are left alone; safe to re-run).

    TABLE_NAME=<the stack's TableName output> .venv/bin/python scripts/backfill_expiry_days.py

Uses your AWS credentials (dynamodb:Scan and dynamodb:UpdateItem on the table). Without it, those
keys are simply not warned; every one of them expires within 365 days of the deploy.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "shared"))

from apikeys.expiry_notices import backfill

if __name__ == "__main__":
    print(f"{backfill()} keys added to the expiry-notice index")
