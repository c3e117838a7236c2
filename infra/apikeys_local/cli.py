"""`apikeys-local`: serve the API locally, mint management tokens, set plans, invoke functions
(`invoke` with an event file, `schedule` as their EventBridge Scheduler schedule would)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apikeys_local.idp import LocalIdentityProvider
from apikeys_local.server import Emulator, find_root, serve, set_plan, state_dir
from apikeys_local.template import Schedule

DEFAULT_TABLE = "apikeys-local"


def _running_server(root: Path) -> dict[str, Any] | None:
    state = state_dir(root) / "server.json"
    if not state.is_file():
        return None
    info: dict[str, Any] = json.loads(state.read_text())
    try:
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None  # left behind by a server that is gone
    return info


def _emulator(root: Path, table: str | None) -> Emulator:
    """The same table the running server uses, or AWS_ENDPOINT_URL_DYNAMODB's, or a throwaway one."""
    server = _running_server(root)
    if os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        return Emulator.start(root, table or DEFAULT_TABLE, logs_to_stderr=True, containers=1)
    if server is not None:
        return Emulator.start(
            root, table or server["table_name"], endpoint=server["dynamodb_endpoint"], logs_to_stderr=True, containers=1
        )
    print("note: no local server is running; using an empty in-memory table", file=sys.stderr)
    return Emulator.start(root, table or DEFAULT_TABLE, logs_to_stderr=True, containers=1)


def _overrides(pairs: list[str]) -> dict[str, str]:
    """`Name=Value` pairs, as `sam deploy --parameter-overrides` takes them."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"apikeys-local: --parameter-overrides expects Name=Value, got {pair!r}")
        overrides[name] = value
    return overrides


def _cmd_serve(args: argparse.Namespace) -> int:
    serve(find_root(), args.host, args.port, args.table, parameter_overrides=_overrides(args.parameter_overrides))
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    root = find_root()
    from apikeys_local.template import load_stack

    claims = {f.environment.get("ACCOUNT_ID_CLAIM") for f in load_stack(root, DEFAULT_TABLE).functions.values()}
    claim = next((c for c in claims if c), "sub")
    print(LocalIdentityProvider(state_dir(root)).mint(args.account, claim, args.ttl))
    return 0


def _cmd_plan_set(args: argparse.Namespace) -> int:
    emulator = _emulator(find_root(), args.table)
    try:
        print(json.dumps(set_plan(emulator, args.account, args.plan)))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        emulator.stop()
    return 0


def _cmd_invoke(args: argparse.Namespace) -> int:
    event = json.loads(Path(args.event).read_text()) if args.event != "-" else json.load(sys.stdin)
    emulator = _emulator(find_root(), args.table)
    try:
        if args.function not in emulator.stack.functions:
            known = ", ".join(sorted(emulator.stack.functions))
            print(f"error: no function {args.function!r} in template.yaml (known: {known})", file=sys.stderr)
            return 2
        result = emulator.runtime.invoke(args.function, event)
    finally:
        emulator.stop()
    print(json.dumps(result.payload, indent=2, ensure_ascii=False))
    return 0 if result.ok else 1


def scheduled_input(schedule: Schedule, at: datetime) -> Any:
    """The event EventBridge Scheduler sends for a run at `at`: the target's Input with its
    context attributes filled in (or {} without an Input)."""
    if schedule.input is None:
        return {}
    values = {
        "<aws.scheduler.scheduled-time>": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": "1",
        "<aws.scheduler.schedule-arn>": f"arn:aws:scheduler:us-east-1:123456789012:schedule/local/{schedule.name}",
    }
    text = schedule.input
    for attribute, value in values.items():
        text = text.replace(attribute, value)
    return json.loads(text)


def _cmd_schedule(args: argparse.Namespace) -> int:
    root = find_root()
    from apikeys_local.template import load_stack

    schedules = {s.function: s for s in load_stack(root, DEFAULT_TABLE).schedules}
    if args.function is None:
        for schedule in schedules.values():
            print(f"{schedule.function}  {schedule.expression}  (event {schedule.name})")
        return 0
    if args.function not in schedules:
        print(
            f"error: {args.function!r} has no schedule in template.yaml (scheduled: {', '.join(schedules)})",
            file=sys.stderr,
        )
        return 2
    try:
        at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        print(
            f"error: --at takes an ISO 8601 time with its zone, e.g. 2027-03-01T09:00:00Z; got {args.at!r}",
            file=sys.stderr,
        )
        return 2
    event = scheduled_input(schedules[args.function], at)
    emulator = _emulator(root, args.table)
    try:
        result = emulator.runtime.invoke(args.function, event)
    finally:
        emulator.stop()
    print(json.dumps(result.payload, indent=2, ensure_ascii=False))
    return 0 if result.ok else 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="apikeys-local", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve the API from template.yaml on an embedded DynamoDB")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 3000), help="0 picks a free port")
    p.add_argument("--table", default=DEFAULT_TABLE)
    p.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="template parameters, e.g. ThrottlingRateLimit=5 ThrottlingBurstLimit=10",
    )
    p.set_defaults(run=_cmd_serve)

    p = sub.add_parser("token", help="print a management token (a signed local JWT) for an account")
    p.add_argument("--account", required=True)
    p.add_argument("--ttl", type=int, default=12 * 3600, help="seconds until it expires")
    p.set_defaults(run=_cmd_token)

    p = sub.add_parser("plan", help="plan commands")
    plan_sub = p.add_subparsers(dest="plan_command", required=True)
    ps = plan_sub.add_parser("set", help="run SetPlanFunction against the local table")
    ps.add_argument("account")
    ps.add_argument("plan")
    ps.add_argument("--table", default=None)
    ps.set_defaults(run=_cmd_plan_set)

    p = sub.add_parser("invoke", help="invoke one function with an event file, as `sam local invoke` does")
    p.add_argument("function", help="logical id in template.yaml, e.g. CreateKeyFunction")
    p.add_argument("--event", "-e", required=True, help="event JSON file, or - for stdin")
    p.add_argument("--table", default=None)
    p.set_defaults(run=_cmd_invoke)

    p = sub.add_parser(
        "schedule", help="run a scheduled function now, with the event its EventBridge Scheduler schedule sends"
    )
    p.add_argument("function", nargs="?", help="logical id, e.g. ExpiryNoticesFunction; omitted: list the schedules")
    p.add_argument("--at", default=None, help="the scheduled time it runs for (ISO 8601 with zone); default now")
    p.add_argument("--table", default=None)
    p.set_defaults(run=_cmd_schedule)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
