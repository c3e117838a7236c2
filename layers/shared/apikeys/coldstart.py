"""Keep Python's cyclic garbage collector out of a function's cold start.

Importing boto3, botocore, Powertools and pydantic builds a few hundred thousand long-lived
objects. With the collector on, those imports trigger full collections that walk all of them
(about a tenth of the authorizer's cold start on the benchmark machine, see
docs/performance.md), and every later full collection, during a warm invocation, walks them
again. Every function imports this module first (it is the first import of `apikeys.handler`,
every function's first import), which pauses the collector; the function's entry-point helper
calls `ready()` once the imports are done, which moves what they built into the permanent
generation (gc.freeze, never scanned again) and resumes collection for what invocations allocate.
"""

from __future__ import annotations

import gc

_was_enabled = gc.isenabled()
gc.disable()


def ready() -> None:
    """End of the init phase: freeze the import-time heap, then collect normally."""
    gc.freeze()
    if _was_enabled:
        gc.enable()
