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

import os  # noqa: E402
import sys  # noqa: E402

from . import analyze  # noqa: E402
from ._constants import ENV_HANDLER  # noqa: E402
from ._redirect import HandlerError, resolve  # noqa: E402,F401


_state = sys.modules[__package__]._state
if _state is not None and not _state.started:
    _state.coverage = "redirect"
    _state.setup_ns += perf_counter_ns() - _started  # this module's own load is the SDK's
# the task root is on sys.path in Lambda; outside it (tests, profile) the working folder stands in
_task_root = os.environ.get("LAMBDA_TASK_ROOT")
if _task_root and _task_root not in sys.path:
    sys.path.insert(0, _task_root)
_original = resolve(os.environ.get(ENV_HANDLER, ""))
handler = analyze(_original)
