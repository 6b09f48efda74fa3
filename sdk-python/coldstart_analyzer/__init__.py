"""coldstart-analyzer: why is this Lambda function's cold start slow?

Importing this package installs the import hooks (unless COLDSTART_ENABLED is false): every module
imported after it, during init, is timed. Wrap the handler with `analyze` (or use the handler
redirect, `coldstart_analyzer.handler.handler` with COLDSTART_HANDLER, which times everything) and
each invocation sends one record to coldstartd; the first carries the cold-start breakdown.
See docs/sdk-python.md.
"""

from time import perf_counter_ns as _now

_import_started = _now()

import functools as _functools  # noqa: E402
import os as _os  # noqa: E402

from . import _constants  # noqa: E402
from ._config import Config, resolve_config  # noqa: E402
from ._constants import (  # noqa: E402
    ENV_API_KEY,
    ENV_ENABLED,
    ENV_ENDPOINT,
    ENV_EXTENSION,
    ENV_HANDLER,
    ENV_SAMPLE_RATE,
    ENV_TIMEOUT,
    ENV_TRANSPORT,
    SDK_VERSION,
)
from ._runtime import Runtime as _Runtime  # noqa: E402
from ._runtime import begin as _begin  # noqa: E402
from ._runtime import finish as _finish  # noqa: E402

__version__ = SDK_VERSION
__all__ = [
    "analyze",
    "resolve_config",
    "Config",
    "SDK_VERSION",
    "ENV_API_KEY",
    "ENV_ENDPOINT",
    "ENV_ENABLED",
    "ENV_SAMPLE_RATE",
    "ENV_TIMEOUT",
    "ENV_HANDLER",
    "ENV_TRANSPORT",
    "ENV_EXTENSION",
]


def _enabled_in_environment() -> bool:
    value = _os.environ.get(ENV_ENABLED, "").strip().lower()
    return value not in ("false", "0", "no", "off")


_state = None
if _enabled_in_environment():
    try:
        _state = _Runtime(coverage="import")
        _state._setup_started = _import_started
        _state.sdk_loaded_at = _import_started
        if _os.environ.get(_constants.LAMBDA_INITIALIZATION_TYPE) == "snap-start":
            _state.prepare_snap_start()
        _state.hooks.install()
        _state.finish_setup()
    except Exception:  # never break the function's init
        _state = None


def analyze(handler=None, **options):
    """Wraps a Lambda handler `(event, context)` so that each invocation sends a record.

    Usable as `@analyze`, `@analyze(sample_rate=0.1)` or `handler = analyze(handler)`. Options
    (they win over the environment): api_key, endpoint, enabled, sample_rate, timeout (ms),
    transport ("auto", "direct", "logs"). The handler is returned unchanged when the SDK is
    disabled, or has no API key and does not use the logs transport. Its return value and
    exceptions pass through unchanged; nothing of the SDK raises into it.
    """
    if handler is None:
        return lambda fn: analyze(fn, **options)
    if getattr(handler, _constants.WRAPPED_ATTRIBUTE, None) is not None:
        return handler
    config = resolve_config(options)
    runtime = _state
    if runtime is None or not config.enabled:
        return handler
    if config.api_key is None and config.transport != "logs":
        from ._warn import warn_once

        warn_once("no-key", "no %s: records are not sent (or set %s=logs)" % (ENV_API_KEY, ENV_TRANSPORT))
        return handler

    if runtime.handler_module is None:
        runtime.handler_module = getattr(handler, "__module__", None)

    @_functools.wraps(handler)
    def wrapped(event, context):
        invocation = _begin(runtime, config, context)
        try:
            return handler(event, context)
        finally:
            _finish(runtime, invocation)

    setattr(wrapped, _constants.WRAPPED_ATTRIBUTE, handler)
    return wrapped
