"""What every function's entry point shares, so a handler file holds only its route(s).

`rest_function()` builds a REST handler's resolver and its `lambda_handler` (logger with the
API Gateway correlation id, metrics flushed when a write recorded one, the invocation's retry
deadline) and ends the cold start; `wrote()` is how every write reports itself, so create,
delete, roll, rename and set plan log and count alike. The authorizer does not use this
module: its import path stays free of the resolver and pydantic.
"""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from apikeys import retries
from apikeys.observability import make_logger, make_metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

Handler = Callable[[Any, Any], Any]


@functools.cache
def _metrics() -> Metrics:
    return make_metrics()


def wrote(metric: str, message: str, **extra: Any) -> None:
    """Record a committed write: one INFO line and one Count metric (`KeyCreated`, `KeyDeleted`,
    `KeyRolled`, `KeyRenamed`, `PlanChanged`), with the service as the only dimension."""
    make_logger().info(message, extra=extra)
    _metrics().add_metric(name=metric, unit=MetricUnit.Count, value=1)


def entry_point(handle: Handler, correlation_id_path: str | None = None) -> Handler:
    """`handle` as a Lambda entry point: Lambda context and correlation id in every log line,
    the retry deadline from the time Lambda gives the invocation, metrics flushed after it.
    Reads record no metric and flush nothing (no "no metrics" warning on every GET)."""
    metrics = _metrics()

    def lambda_handler(event: Any, context: Any) -> Any:
        try:
            with retries.invocation(context):
                return handle(event, context)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()

    injected: Handler = make_logger().inject_lambda_context(correlation_id_path=correlation_id_path)(lambda_handler)
    return injected


def rest_function() -> tuple[APIGatewayRestResolver, Handler]:
    """A REST handler's resolver (routes are added to it) and its entry point; ends the cold start.
    The resolver is imported here, not at the top: set_plan's entry point needs neither it nor pydantic."""
    from apikeys.api import make_resolver

    app = make_resolver(make_logger())
    handler = entry_point(app.resolve, correlation_paths.API_GATEWAY_REST)
    coldstart.ready()
    return app, handler
