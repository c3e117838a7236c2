"""One way in for every function: a helper per kind of entry point, so a function file holds
only its route(s) or its record handler, and no preamble of its own.

- `rest_function()`: a REST handler's resolver (routes are added to it) and its entry point.
- `authorizer_function(handle)`: the authorizer; nothing more on its import path than it needs.
- `invoked_function(handle)`: a direct or scheduled invoke (set_plan, expiry_notices).
- `stream_function(handle_record)`: a DynamoDB stream consumer, one record at a time.

Each injects the Lambda context (and correlation id) into every log line, parses the scope
catalogue at import when the function uses it (a malformed KEY_SCOPES fails the cold start, not
each request) and ends the cold start (`coldstart.ready()`). All but the authorizer, which only
reads, run each invocation under its retry deadline and flush the metrics a write recorded.
`wrote()` is how every write reports itself, so every write logs and counts alike.

Lean on purpose: the authorizer imports this module, so pydantic, the resolver and Powertools'
Metrics are imported only inside the kinds that use them.
"""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from apikeys import container, retries
from apikeys.config import account_id_claim, get_scope_catalogue
from apikeys.observability import inject_context_on_first_line, make_logger, make_metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

Handler = Callable[[Any, Any], Any]


@container.cached
def _metrics() -> Metrics:
    return make_metrics()


def wrote(metric: str, message: str, **extra: Any) -> None:
    """Record a committed write: one INFO line and one Count metric (`KeyCreated`, `KeyDeleted`,
    `KeyRolled`, `KeyRenamed`, `PlanChanged`), with the service as the only dimension."""
    from aws_lambda_powertools.metrics import MetricUnit

    make_logger().info(message, extra=extra)
    _metrics().add_metric(name=metric, unit=MetricUnit.Count, value=1)


def _ready(handler: Handler, correlation_id_path: str | None, catalogue: bool, lazy_keys: bool = False) -> Handler:
    """The end of every helper: logger injection, the account claim checked, the catalogue
    parsed, the cold start over. `lazy_keys`: the context keys are added only to an invocation
    that logs (the authorizer, whose allowed requests log nothing)."""
    account_id_claim()
    injected = inject_context_on_first_line(handler) if lazy_keys else None
    if injected is None:
        injected = make_logger().inject_lambda_context(correlation_id_path=correlation_id_path)(handler)
    if catalogue:
        get_scope_catalogue()
    coldstart.ready()
    return injected


def _with_deadline(handle: Handler, correlation_id_path: str | None = None, catalogue: bool = False) -> Handler:
    """`handle` under the retry deadline from the time Lambda gives the invocation, metrics
    flushed after it. Reads record no metric and flush nothing (no "no metrics" warning on every GET)."""
    _metrics()  # built during the cold start, not on the first request

    def lambda_handler(event: Any, context: Any) -> Any:
        try:
            with retries.invocation(context):
                return handle(event, context)
        finally:
            metrics = _metrics()
            if metrics.metric_set:
                metrics.flush_metrics()

    return _ready(lambda_handler, correlation_id_path, catalogue)


def rest_function(catalogue: bool = False) -> tuple[APIGatewayRestResolver, Handler]:
    """A REST handler's resolver (routes are added to it after) and its entry point, with the API
    Gateway correlation id. `catalogue`: the function reads the scope catalogue (key objects list
    scopes), so it is parsed now."""
    from aws_lambda_powertools.logging import correlation_paths

    from apikeys.api import make_resolver

    app = make_resolver(make_logger())
    return app, _with_deadline(app.resolve, correlation_paths.API_GATEWAY_REST, catalogue)


def authorizer_function(handle: Handler) -> Handler:
    """The authorizer's entry point. No retry deadline: it reads one item, which botocore's own
    retries bound, and never loops. No metrics: allowed requests are in the access log.

    A failure (anything but the `Unauthorized` refusal, which is how a REST authorizer says 401
    and so counts in Lambda's `Errors` too) logs one `authorizer failed` line: API Gateway answers
    it 503 AUTHORIZER_FAILURE, and the template's metric filter turns the line into the
    `AuthorizerFailed` metric the outage alarm watches. Nothing is added to a request that succeeds."""

    def checked(event: Any, context: Any) -> Any:
        try:
            return handle(event, context)
        except Exception as error:
            if str(error) != "Unauthorized":
                make_logger().exception("authorizer failed")
            raise

    return _ready(checked, None, catalogue=True, lazy_keys=True)


def invoked_function(handle: Handler, catalogue: bool = False) -> Handler:
    """A function invoked directly (set_plan) or by a schedule (expiry_notices): errors propagate to
    the invoker as a failed invocation (a scheduled one is retried, then queued)."""
    return _with_deadline(handle, None, catalogue)


def stream_function(handle_record: Callable[[DynamoDBRecord], None], catalogue: bool = False) -> Handler:
    """A DynamoDB stream consumer: Powertools' batch processing reports each failed record (the
    stream redelivers from the first of them), and the retry deadline of the invocation bounds
    every record's retries, so a slow batch stops retrying before Lambda's Timeout kills it."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    def consume(event: Any, context: Any) -> Any:
        return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)

    return _with_deadline(consume, None, catalogue)
