"""Key ids: the ids the service makes are the ones every key route accepts and the published
OpenAPI document describes, and an id that differs in any way is a 404 on every route before
any I/O (it cannot name a key)."""

from __future__ import annotations

import re

import pytest

from apikeys import keys
from apikeys_local.openapi import build_spec
from apikeys_local.template import load_stack
from tests.helpers.support import ROOT, Api, CallCounter


def test_key_ids_the_service_makes_are_the_ones_it_accepts() -> None:
    made = [keys.new_key_id() for _ in range(200)]
    assert all(keys.is_key_id(key_id) for key_id in made)
    assert all(re.fullmatch(keys.KEY_ID_PATTERN, key_id) for key_id in made)
    for bad in ["", "key_", "key_" + "a" * 19, "key_" + "a" * 21, "KEY_" + "a" * 20, "key_" + "a" * 19 + "-"]:
        assert not keys.is_key_id(bad), bad
    assert not keys.is_key_id(made[0] + "\n")


@pytest.mark.engines("moto")
def test_every_key_route_accepts_the_ids_the_service_makes_and_refuses_any_other_before_any_io(
    api: Api, calls: CallCounter
) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    key_id = created["id"]
    allowed = api.bearer(created["key"])
    assert allowed is not None and allowed["context"]["key_id"] == key_id

    # The id create made, and the one roll made, work on every route that takes an id.
    assert api.get("acct-a", key_id).status == 200
    assert api.usage("acct-a", key_id).status == 200
    assert api.rename("acct-a", key_id, "renamed").status == 200
    assert api.patch("acct-a", key_id, {"scopes": ["whoami"]}).status == 200
    rolled = api.roll("acct-a", key_id)
    assert rolled.status == 201, rolled.body
    assert api.get("acct-a", rolled.body["id"]).body["name"] == "renamed"
    assert api.delete("acct-a", rolled.body["id"]).status == 204

    # Anything else cannot name a key: the same 404 on every route, and no DynamoDB call.
    near_misses = [
        key_id[:-1],
        key_id + "a",
        "KEY_" + key_id[4:],
        key_id[:-1] + "-",
        "key_" + "é" * 20,
        " " + key_id,
    ]
    routes = {
        "get": lambda bad: api.get("acct-a", bad),
        "usage": lambda bad: api.usage("acct-a", bad),
        "rename": lambda bad: api.rename("acct-a", bad, "x"),
        "scopes": lambda bad: api.patch("acct-a", bad, {"scopes": ["whoami"]}),
        "roll": lambda bad: api.roll("acct-a", bad),
        "delete": lambda bad: api.delete("acct-a", bad),
    }
    for form, bad in enumerate(near_misses):
        for route, call in routes.items():
            calls.reset()
            reply = call(bad)
            assert (reply.status, reply.body["error"]["code"]) == (404, "not_found"), (route, form)
            assert reply.body["error"]["message"].startswith("No API key with id "), (route, form)
            assert calls.calls == [], (route, form)


def test_the_openapi_document_describes_every_key_id_parameter_as_the_ids_the_service_makes() -> None:
    """What a client generated from /openapi.json validates: the ids it is given, and nothing else."""
    spec = build_spec(load_stack(ROOT, "unused"))
    patterns = {
        (method, path): parameter["schema"]["pattern"]
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["name"] == "key_id"
    }
    assert set(patterns) == {
        ("get", "/keys/{key_id}"),
        ("patch", "/keys/{key_id}"),
        ("delete", "/keys/{key_id}"),
        ("post", "/keys/{key_id}/roll"),
        ("get", "/keys/{key_id}/usage"),
    }
    made = [keys.new_key_id() for _ in range(200)]
    for route, pattern in patterns.items():
        assert all(re.search(pattern, key_id) for key_id in made), route
        for bad in (made[0][:-1], made[0] + "a", "KEY_" + made[0][4:], made[0][:-1] + "-", " " + made[0]):
            assert not re.search(pattern, bad), (route, bad)
