"""AWS WAF's rate-based rules, as the emulator applies the web ACL associated with the stage.

Each rule counts requests per aggregation key (the client IP, or a header's value after the
rule's text transformations) over its evaluation window, and blocks with its custom response
once a key's count exceeds the limit. A request without the header is not counted by a header
rule. Evaluated before the stage's throttle, as WAF sits in front of API Gateway: a blocked
request spends no token of the shared bucket, so a flood from one client cannot starve the
others (issue 22 item 10). The window slides here; WAF's own counting is coarser (it may take
some seconds to start blocking), which the docs state.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

_WHITE_SPACE = re.compile("[\f\t\n\r\v\xa0]")


def transform(value: str, transformations: tuple[str, ...]) -> str:
    """WAF's text transformations the templates use, in priority order, as AWS documents them."""
    for kind in transformations:
        if kind == "LOWERCASE":
            value = value.lower()
        elif kind == "COMPRESS_WHITE_SPACE":
            value = re.sub(" +", " ", _WHITE_SPACE.sub(" ", value))
        elif kind != "NONE":
            raise ValueError(f"the emulator does not apply the WAF text transformation {kind}")
    return value


@dataclass(frozen=True)
class RateRule:
    name: str
    limit: int
    window_seconds: float
    header: str | None  # None: aggregate on the client IP
    transformations: tuple[str, ...]
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def key(self, client_ip: str, headers: Any) -> str | None:
        if self.header is None:
            return client_ip
        value = headers.get(self.header)
        return None if value is None else transform(value, self.transformations)


class RateLimiter:
    """The rules of one web ACL, in priority order; `check` returns the rule that blocks."""

    def __init__(self, rules: list[RateRule]) -> None:
        self.rules = rules
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client_ip: str, headers: Any) -> RateRule | None:
        now = time.monotonic()
        with self._lock:
            for rule in self.rules:
                key = rule.key(client_ip, headers)
                if key is None:
                    continue
                hits = self._hits.setdefault((rule.name, key), deque())
                while hits and hits[0] <= now - rule.window_seconds:
                    hits.popleft()
                hits.append(now)  # blocked requests count too, as WAF counts them
                if len(hits) > rule.limit + 1:
                    hits.popleft()  # bounded memory: over the limit is all that matters
                if len(hits) > rule.limit:
                    return rule
        return None


def rate_rules(resources: dict[str, Any], resolve: Any) -> list[RateRule]:
    """The rate-based rules of every web ACL the template creates and associates (conditions
    resolved), in priority order. Other statements are not emulated and are refused."""
    associated = {  # `!GetAtt KeysApiWebAcl.Arn` resolves to "KeysApiWebAcl.Arn"
        str(resolve(r["Properties"]["WebACLArn"])).split(".", 1)[0]
        for r in resources.values()
        if r["Type"] == "AWS::WAFv2::WebACLAssociation" and _created(r, resolve)
    }
    rules: list[tuple[int, RateRule]] = []
    for name, resource in resources.items():
        if resource["Type"] != "AWS::WAFv2::WebACL" or name not in associated or not _created(resource, resolve):
            continue
        props = resolve(resource["Properties"])
        bodies = props.get("CustomResponseBodies") or {}
        for rule in props.get("Rules") or []:
            statement = rule["Statement"].get("RateBasedStatement")
            if statement is None:
                raise ValueError(f"web ACL {name}: the emulator applies rate-based rules only ({rule['Name']})")
            header, transformations = None, ("NONE",)
            if statement["AggregateKeyType"] == "CUSTOM_KEYS":
                (custom,) = statement["CustomKeys"]
                header = custom["Header"]["Name"]
                steps = sorted(custom["Header"]["TextTransformations"], key=lambda t: int(t["Priority"]))
                transformations = tuple(t["Type"] for t in steps)
            elif statement["AggregateKeyType"] != "IP":
                raise ValueError(f"web ACL {name}: aggregate key {statement['AggregateKeyType']} is not emulated")
            response = rule["Action"]["Block"].get("CustomResponse") or {}
            body = bodies.get(response.get("CustomResponseBodyKey"), {}).get("Content", "")
            headers = {h["Name"]: str(h["Value"]) for h in response.get("ResponseHeaders") or []}
            if body:
                headers["Content-Type"] = "application/json"
            rate_rule = RateRule(
                name=rule["Name"],
                limit=int(statement["Limit"]),
                window_seconds=float(statement.get("EvaluationWindowSec", 300)),
                header=header,
                transformations=transformations,
                status=int(response.get("ResponseCode", 403)),
                body=body,
                headers=headers,
            )
            rules.append((int(rule["Priority"]), rate_rule))
    return [rule for _, rule in sorted(rules, key=lambda pair: pair[0])]


def _created(resource: dict[str, Any], resolve: Any) -> bool:
    condition = resource.get("Condition")
    return condition is None or bool(resolve.condition(condition))
