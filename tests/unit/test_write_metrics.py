"""Every write reports itself alike: one CloudWatch EMF line with one Count metric named for
the write, in the same namespace and with the same dimensions; reads emit none."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from tests.helpers.support import Api

pytestmark = pytest.mark.engines("moto")

ACCOUNT = "acct-metrics"


def _emf(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents printed since the last read; the output is written back for the
    suite's hygiene check."""
    out, err = capfd.readouterr()
    sys.stdout.write(out)
    sys.stderr.write(err)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def test_every_write_emits_one_metric_of_the_same_shape(api: Api, capfd: pytest.CaptureFixture[str]) -> None:
    _emf(capfd)
    api.set_plan(ACCOUNT, "pro")
    key_id = api.create(ACCOUNT, "first").body["id"]
    assert api.rename(ACCOUNT, key_id, "renamed").status == 200
    rolled = api.roll(ACCOUNT, key_id).body["id"]
    assert api.delete(ACCOUNT, rolled).status == 204
    assert api.list(ACCOUNT).status == 200 and api.get(ACCOUNT, "k" * 8).status == 404
    documents = _emf(capfd)
    names = [d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for d in documents]
    assert names == ["PlanChanged", "KeyCreated", "KeyRenamed", "KeyRolled", "KeyDeleted"]
    shapes = {
        (
            d["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            json.dumps(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"]),
            len(d["_aws"]["CloudWatchMetrics"][0]["Metrics"]),
        )
        for d in documents
    }
    assert len(shapes) == 1 and next(iter(shapes))[2] == 1
    assert all(d[name] == [1.0] for d, name in zip(documents, names, strict=True))
