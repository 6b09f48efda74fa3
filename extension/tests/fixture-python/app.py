# A Python function for the extension's suite (run.mjs), loaded through the Python SDK's handler
# redirect: its imports are timed, its records go to the extension's stream.
import decimal  # noqa: F401
import fractions  # noqa: F401

import helper


def handler(event, context):
    return {"n": event.get("n"), "helper": helper.VALUE}
