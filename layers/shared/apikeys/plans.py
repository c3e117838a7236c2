"""Plans and their key limits; the wording customers see when they hit a limit."""

from __future__ import annotations


def limit_for(plan: str | None, limits: dict[str, int]) -> int:
    """Keys a plan allows; no plan (or a plan since removed from config) allows none."""
    return limits.get(plan, 0) if plan else 0


def next_plan_up(plan: str | None, limits: dict[str, int]) -> str | None:
    current = limit_for(plan, limits)
    bigger = [(limit, name) for name, limit in limits.items() if limit > current]
    return min(bigger)[1] if bigger else None


def limit_message(plan: str | None, limits: dict[str, int]) -> str:
    limit = limit_for(plan, limits)
    upgrade = next_plan_up(plan, limits)
    if plan:
        head = f"Your {plan.capitalize()} plan allows up to {limit} API key{'s' if limit != 1 else ''}."
    else:
        head = "Your account has no plan, which allows 0 API keys."
    if upgrade:
        return f"{head} Delete a key or upgrade to {upgrade.capitalize()} ({limits[upgrade]} keys) to create more."
    return f"{head} Delete a key you no longer use to create a new one."
