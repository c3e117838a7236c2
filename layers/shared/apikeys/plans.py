"""Plans and their key limits; the wording customers see when they hit a limit."""

from __future__ import annotations


def limit_for(plan: str | None, limits: dict[str, int]) -> int:
    """Keys a plan allows; no plan (or a plan since removed from config) allows none."""
    return limits.get(plan, 0) if plan else 0


def next_plan_up(plan: str | None, limits: dict[str, int]) -> str | None:
    current = limit_for(plan, limits)
    bigger = [(limit, name) for name, limit in limits.items() if limit > current]
    return min(bigger)[1] if bigger else None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def limit_message(plan: str | None, limits: dict[str, int], key_count: int, roll: bool = False) -> str:
    """Why a create (or a roll) is refused and exactly what lifts it: how many keys to delete,
    and the smallest plan that would allow it now. A create needs `key_count < limit`; a roll
    keeps the count, so it needs `key_count <= limit` (an account downgraded below its count)."""
    limit = limit_for(plan, limits)
    needed = key_count if roll else key_count + 1  # the smallest limit that allows the action
    action = "roll a key" if roll else "create a new one"
    owner = f"the {plan.capitalize()} plan allows" if plan else "no plan, which allows"
    head = f"This account has {_count(key_count, 'API key')} and {owner} {limit or 'none'}."
    # Called on a refusal, so needed > limit: any plan that fits is an upgrade.
    fits = sorted((lim, name) for name, lim in limits.items() if lim >= needed)
    upgrade = f"upgrade to {fits[0][1].capitalize()} ({_count(fits[0][0], 'key')})" if fits else ""
    if limit == 0:  # deleting keys cannot help: only a plan can
        return f"{head} {upgrade[:1].upper()}{upgrade[1:]} to {action}." if upgrade else head
    delete = f"Delete {_count(needed - limit, 'key')} to {action}"
    return f"{head} {delete}, or {upgrade}." if upgrade else f"{head} {delete}."
