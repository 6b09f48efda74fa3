"""The handler redirect: set the function's handler to `coldstart_analyzer.handler.handler` and
COLDSTART_HANDLER to the original one (`app.handler`, `src/app.main`, `pkg.module.function`).

Importing this module (Lambda does it during init) loads the SDK first, so its hooks time
everything the function's code imports; then it loads the original handler the way Lambda's
Python runtime does (awslambdaric's _get_handler): split at the last dot into module and function,
`/` in the module part becomes `.`, importlib.import_module, getattr. A missing or malformed
COLDSTART_HANDLER, or a module that cannot be imported, fails init with the runtime's own error
kinds in the message; a missing function fails each invocation, as Lambda does.
"""

from time import perf_counter_ns

_started = perf_counter_ns()

import importlib  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from . import analyze
from ._constants import ENV_HANDLER


class HandlerError(Exception):
    """Raised during init when COLDSTART_HANDLER cannot be resolved (Lambda reports it)."""


def resolve(name):
    """The function named like a Lambda Python handler; raises HandlerError like the runtime."""
    if not name or not name.strip():
        raise HandlerError("Runtime.HandlerNotFound: %s is not set (the original handler, e.g. app.handler)" % ENV_HANDLER)
    name = name.strip()
    try:
        module_name, function_name = name.rsplit(".", 1)
    except ValueError as error:
        raise HandlerError("Runtime.MalformedHandlerName: Bad handler '%s': %s" % (name, error)) from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise HandlerError("Runtime.BuiltInModuleConflict: Cannot use built-in module %s as a handler module" % module_name)
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        raise HandlerError("Runtime.ImportModuleError: Unable to import module '%s': %s" % (module_name, error)) from error
    function = getattr(module, function_name, None)
    if function is None:
        message = "Runtime.HandlerNotFound: Handler '%s' missing on module '%s'" % (function_name, module_name)

        def missing(event, context):
            raise HandlerError(message)

        return missing
    return function


_state = sys.modules[__package__]._runtime
if _state is not None and not _state.started:
    _state.coverage = "redirect"
    _state.setup_ns += perf_counter_ns() - _started  # this module's own load is the SDK's
# the task root is on sys.path in Lambda; outside it (tests, profile) the working folder stands in
_task_root = os.environ.get("LAMBDA_TASK_ROOT")
if _task_root and _task_root not in sys.path:
    sys.path.insert(0, _task_root)
_original = resolve(os.environ.get(ENV_HANDLER, ""))
handler = analyze(_original)
