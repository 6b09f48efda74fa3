"""A minimal Lambda runtime interface client for Python, as AWS's awslambdaric behaves (the
bootstrap of Lambda's python3.x runtimes), for lambda-emulator.mjs: its client class exists as
awslambdaric.lambda_runtime_client.LambdaRuntimeClient before the handler is loaded (so the Python
SDK hooks it as it hooks the real one), the handler named by _HANDLER is loaded the way the runtime
loads it (LAMBDA_TASK_ROOT first on sys.path, importlib, getattr), init errors are posted, then it
loops on the Runtime API: next -> handler -> response | error. Standard library only.
"""

import http.client
import importlib
import json
import os
import sys
import time
import types

API = os.environ["AWS_LAMBDA_RUNTIME_API"]


def request(method, path, body=None, headers=None):
    host, port = API.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port))
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}, **({"Content-Type": "application/json"} if body is not None else {})))
        response = conn.getresponse()
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), response.read()
    finally:
        conn.close()


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("lambda-runtime-aws-request-id")
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self._deadline_ms = int(headers.get("lambda-runtime-deadline-ms") or 0)

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


class LambdaRuntimeClient:
    def wait_next_invocation(self):
        status, headers, body = request("GET", "/2018-06-01/runtime/invocation/next")
        return json.loads(body or b"null"), Context(headers)

    def post_invocation_result(self, request_id, body):
        request("POST", "/2018-06-01/runtime/invocation/%s/response" % request_id, body)

    def post_invocation_error(self, request_id, body):
        request("POST", "/2018-06-01/runtime/invocation/%s/error" % request_id, body)

    def post_init_error(self, body):
        request("POST", "/2018-06-01/runtime/init/error", body)


def error_body(error):
    return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error), "stackTrace": []})


def main():
    package = types.ModuleType("awslambdaric")
    package.__path__ = []
    module = types.ModuleType("awslambdaric.lambda_runtime_client")
    module.LambdaRuntimeClient = LambdaRuntimeClient
    sys.modules["awslambdaric"] = package
    sys.modules["awslambdaric.lambda_runtime_client"] = module
    client = LambdaRuntimeClient()
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    sys.path.insert(0, task_root)
    try:
        module_name, function_name = os.environ["_HANDLER"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name.replace("/", ".")), function_name)
    except Exception as error:
        client.post_init_error(error_body(error))
        sys.exit(129)
    while True:
        event, context = client.wait_next_invocation()
        try:
            result = handler(event, context)
        except Exception as error:
            client.post_invocation_error(context.aws_request_id, error_body(error))
            continue
        client.post_invocation_result(context.aws_request_id, json.dumps(result))


if __name__ == "__main__":
    main()
