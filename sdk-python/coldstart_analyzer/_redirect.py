"""Resolving a handler name the way Lambda's Python runtime does (awslambdaric's _get_handler):
split at the last dot into module and function, `/` in the module part becomes `.`
(`src/app.main` -> module `src.app`), importlib.import_module, getattr. Errors carry the
runtime's error kinds in their message.
"""

import importlib
import sys

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
