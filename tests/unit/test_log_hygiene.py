"""Key material never reaches a log: redaction at DEBUG with the event logged, and the
suite-wide check (tests/helpers/hygiene.py) really fails a test that prints a key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apikeys import keys
from apikeys.observability import redact
from tests.helpers import figures
from tests.helpers.hygiene import find_leaks
from tests.helpers.support import (
    ROOT,
    Api,
    LambdaContext,
    http_api_event,
    load_function,
    request_event,
    rest_event,
    token_event,
)


def test_the_suite_wide_check_fails_a_test_that_prints_key_material(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_inner="""
        import logging
        from apikeys import keys
        from apikeys.observability import make_logger

        def test_prints_full_key():
            print("created", keys.generate("ot_"))

        def test_prints_a_fragment():
            key = keys.generate("ot_")
            print("debug:", key[5:25])

        def test_logs_with_another_logger():
            logging.getLogger("thirdparty").warning("token %s", keys.generate("ot_"))

        def test_shows_only_the_display():
            key = keys.generate("ot_")
            print("display", keys.display(key, "ot_"))

        def test_service_logger_redacts():
            key = keys.generate("ot_")
            make_logger().info({"headers": {"Authorization": "Bearer " + key}, "x": key})
        """
    )
    pythonpath = f"{ROOT}:{ROOT / 'layers' / 'shared'}"
    monkeypatch.setenv("PYTHONPATH", pythonpath)
    # --show-capture=no: the inner failures must not print the keys into this test's output.
    result = pytester.runpytest_subprocess(
        "-p", "tests.helpers.hygiene", "-q", "-p", "no:cacheprovider", "--show-capture=no"
    )
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(["*key material reached the captured output (log hygiene)*"])
    text = result.stdout.str()
    for name in ("test_prints_full_key", "test_prints_a_fragment", "test_logs_with_another_logger"):
        assert f"FAILED test_inner.py::{name}" in text


@pytest.fixture
def debug_event_logging(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The noisiest configuration: DEBUG level and every incoming event logged."""
    from apikeys.observability import make_logger

    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    logger = make_logger()
    level = logger.log_level
    logger.setLevel("DEBUG")
    for name in ("authorizer", "create_key", "whoami"):
        load_function(name, fresh=True)  # the decorator reads POWERTOOLS_LOGGER_LOG_EVENT at import
    yield
    logger.setLevel(level)
    monkeypatch.delenv("POWERTOOLS_LOGGER_LOG_EVENT")
    for name in ("authorizer", "create_key", "whoami"):
        load_function(name, fresh=True)


def test_keys_are_redacted_at_debug_with_events_logged(
    moto_db: None, debug_event_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Api()
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "logged").body["key"]
    bad = key[:-1] + ("A" if key[-1] != "A" else "B")  # wrong checksum: also never logged
    events = [
        token_event(f"Bearer {key}"),
        token_event(f"bearer   {bad}"),
        request_event({"Authorization": f"Bearer {key}", "X-Api-Key": key}),
        request_event({"AUTHORIZATION": f"Bearer {key}", "authorization": f"Bearer {bad}"}),
        http_api_event({"authorization": f"Bearer {key}"}),
    ]
    for event in events:
        api.authorize(event)
    create = rest_event("POST", "/keys", "acct-a", body={"name": key})  # a key pasted into the name
    create["headers"]["Authorization"] = f"Bearer {key}"
    load_function("create_key").lambda_handler(create, LambdaContext())
    whoami = rest_event("GET", "/v1/whoami", None)
    whoami["headers"]["Authorization"] = f"Bearer {key}"
    load_function("whoami").lambda_handler(whoami, LambdaContext())
    from apikeys.usage import wait_for_last_used

    wait_for_last_used()
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    lines = [r for r in records if "level" in r]  # (the rest are metrics)
    from apikeys.observability import make_logger

    assert make_logger().log_level == 10  # DEBUG
    assert sum("methodArn" in line["message"] for line in lines if isinstance(line["message"], dict)) >= 2
    assert "[REDACTED]" in out
    assert find_leaks(out + err) == []
    assert key not in out and key[3:20] not in out and bad not in out
    figures.add("log hygiene", "DEBUG + LOG_EVENT log lines checked for key material", len(lines))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    wrap=st.sampled_from(["{}", "Bearer {}", '"authorization": "{}"', "x={}&y", "'{}'", "\n{}\n", "bearer\t{}"]),
)
def test_redaction_removes_any_key_in_any_context(before: str, after: str, wrap: str) -> None:
    key = keys.generate("ot_")
    line = before + wrap.format(key) + after
    redacted = redact(line)
    assert key not in redacted and key[3:35] not in redacted
    figures.add("log hygiene", "redaction property examples", 1)
