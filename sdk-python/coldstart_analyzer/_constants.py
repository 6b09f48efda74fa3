"""Names shared with users (environment variables) and with the Node.js SDK's contracts.

Everything the SDK reads from the environment is named here. The values mirror
sdk/src/shared/constants.ts so that both SDKs are configured, and send, alike.
"""

SDK_VERSION = "0.1.0"
SDK_PACKAGE = "coldstart-analyzer"

ENV_API_KEY = "COLDSTART_API_KEY"
ENV_ENDPOINT = "COLDSTART_ENDPOINT"
ENV_ENABLED = "COLDSTART_ENABLED"
ENV_SAMPLE_RATE = "COLDSTART_SAMPLE_RATE"
ENV_TIMEOUT = "COLDSTART_TIMEOUT"
ENV_HANDLER = "COLDSTART_HANDLER"
ENV_TRANSPORT = "COLDSTART_TRANSPORT"
ENV_EXTENSION = "COLDSTART_EXTENSION"
ENV_EXTENSION_HOST = "COLDSTART_EXTENSION_HOST"
ENV_EXTENSION_STREAM_PORT = "COLDSTART_EXTENSION_STREAM_PORT"
ENV_EXTENSION_PORT = "COLDSTART_EXTENSION_PORT"
ENV_EXTENSION_PATH = "COLDSTART_EXTENSION_PATH"

# Lambda's own variables that the SDK reads.
LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"
LAMBDA_MEMORY_SIZE = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
LAMBDA_EXECUTION_ENV = "AWS_EXECUTION_ENV"
LAMBDA_REGION = "AWS_REGION"
LAMBDA_INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
LAMBDA_TASK_ROOT = "LAMBDA_TASK_ROOT"
LAMBDA_RUNTIME_DIR = "LAMBDA_RUNTIME_DIR"
LAMBDA_RUNTIME_API = "AWS_LAMBDA_RUNTIME_API"

DEFAULT_ENDPOINT = "https://api.coldstart.dev"
DEFAULT_SAMPLE_RATE = 1.0
DEFAULT_TIMEOUT_MS = 1000

DEFAULT_EXTENSION_PATH = "/opt/extensions/coldstart"
DEFAULT_EXTENSION_HOST = "127.0.0.1"
DEFAULT_EXTENSION_STREAM_PORT = 7244
DEFAULT_EXTENSION_PORT = 7242

INGEST_PATH = "/api/v1/ingest"
BATCH_PATH = "/api/v1/ingest/batch"

# The logs transport writes each record as one line {"coldstart_record": {...}} on stdout.
LOG_RECORD_KEY = "coldstart_record"
# CloudWatch Logs truncates an event beyond 256 KiB: a longer line goes without its module_tree.
MAX_LOG_LINE_BYTES = 250_000

# A first invocation still running after this long (ms) hands off an early copy of its cold-start
# record ("complete": false).
EARLY_COPY_AFTER_MS = 250
# More than this between the end of init and the first invocation: a proactive initialization.
PROACTIVE_GAP_MS = 10_000

# Attribute set on a wrapped handler, pointing to the original: nothing is wrapped twice.
WRAPPED_ATTRIBUTE = "__coldstart_wrapped__"

# Key prefix of the standard library's modules (built-in, frozen, C extension or source) in
# module_timings: they belong to no distribution, and cannot collide with a distribution name
# ([A-Za-z0-9._-]) or an app path ("./...").
STDLIB_PREFIX = "stdlib:"
