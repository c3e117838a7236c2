"""One source per fact: the key-id pattern lives in keys.py, the plan limits in template.yaml,
the template is read and handlers are loaded by one reader, and every AWS client of the service
retries on the same budget."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import Any

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from apikeys import config, keys, retries
from tests.helpers.support import PLAN_LIMITS, ROOT, fresh_container, load_function

SOURCES = [ROOT / d for d in ("layers", "functions", "infra", "bench", "tests")]


def files_containing(pattern: str, tests: bool = True) -> set[str]:
    """Python files of the repository (tests optional, never this one) that match `pattern`."""
    files = [p for d in SOURCES if tests or d.name != "tests" for p in d.rglob("*.py") if "__pycache__" not in p.parts]
    found = {str(p.relative_to(ROOT)) for p in files if re.search(pattern, p.read_text())}
    return found - {str(Path(__file__).relative_to(ROOT))}


def test_the_key_id_pattern_is_written_once_in_keys_py() -> None:
    """The code has one definition (tests may spell the contract out on their own)."""
    assert files_containing(re.escape("key_[0-9A-Za-z]{20}"), tests=False) == {"layers/shared/apikeys/keys.py"}
    handlers = files_containing(r"Path\([^)]*pattern=", tests=False)
    assert handlers, "the key routes document their path parameter"
    for handler in handlers:
        assert re.search(r"Path\([^)]*pattern=KEY_ID_PATTERN\)", (ROOT / handler).read_text()), handler


def test_key_ids_the_service_makes_are_the_ones_it_accepts() -> None:
    made = [keys.new_key_id() for _ in range(200)]
    assert all(keys.is_key_id(key_id) for key_id in made)
    assert all(re.fullmatch(keys.KEY_ID_PATTERN, key_id) for key_id in made)
    for bad in ["", "key_", "key_" + "a" * 19, "key_" + "a" * 21, "KEY_" + "a" * 20, "key_" + "a" * 19 + "-"]:
        assert not keys.is_key_id(bad), bad
    assert not keys.is_key_id(made[0] + "\n")


def test_plan_limits_are_read_from_the_template() -> None:
    """The layer's fallback equals the template's default, and no test or bench copies it."""
    assert config.DEFAULT_PLAN_LIMITS == PLAN_LIMITS
    fallback = {"layers/shared/apikeys/config.py"}  # checked equal just above
    copies = files_containing(r'"pro"\s*:\s*\d+\s*,\s*"advanced"') - fallback
    assert copies == set(), f"plan limits copied instead of read from template.yaml: {copies}"
    from bench.run import FUNCTION_ENV

    assert json.loads(FUNCTION_ENV["PLAN_LIMITS"]) == PLAN_LIMITS


def test_one_template_reader_and_one_handler_loader() -> None:
    reader = {"infra/apikeys_local/template.py"}
    assert files_containing(r"add_multi_constructor\(|yaml\.SafeLoader\)") == reader
    loaders = files_containing(r"spec_from_file_location\(") - {"tests/unit/test_template.py"}  # a fresh interpreter
    assert loaders == reader


class _Refused:
    """A raw HTTP body botocore can read: EventBridge's 500."""

    def stream(self, **_: Any) -> Any:
        return iter([b'{"__type": "InternalException", "message": "injected"}'])


def test_audit_events_retries_like_the_store_and_reads_its_settings_from_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUDIT_EVENT_BUS", "audit-bus")
    monkeypatch.setenv("AUDIT_EVENT_SOURCE", "apikeys.test")
    fresh_container()
    sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=sleeps.append))
    function = load_function("audit_events")
    function.events_client.cache_clear()
    sent: list[dict[str, Any]] = []

    def refuse(request: Any, **_: Any) -> AWSResponse:
        sent.append(json.loads(request.body))
        return AWSResponse(request.url, 500, {}, _Refused())

    function.events_client().meta.events.register_first("before-send.events.PutEvents", refuse)
    image = {"pk": {"S": "EVENT#1"}, "detail_type": {"S": "KeyCreated"}, "detail": {"S": "{}"}}
    record = {"eventID": "1", "eventName": "INSERT", "dynamodb": {"NewImage": image, "SequenceNumber": "1"}}
    try:
        with pytest.raises(ClientError):
            function.handle(function.DynamoDBRecord(record))
    finally:
        function.events_client.cache_clear()
    assert len(sent) == retries.CALL_ATTEMPTS  # botocore's `max_attempts: 3` made 4
    assert {e["EventBusName"] for s in sent for e in s["Entries"]} == {"audit-bus"}
    assert {e["Source"] for s in sent for e in s["Entries"]} == {"apikeys.test"}
