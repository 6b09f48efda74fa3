"""The SDK in fresh python3 processes under the Lambda emulator: transports, the early copy, the
handler's results and errors, the response path, analyze() in code."""

import os

import pytest

from helpers import Collector, FakeExtension, lambda_env, run_emulator, wait_for, write_handler

SIMPLE = """import time
def handler(event, context):
    if event["n"] == 1 and %(first_sleep)s:
        time.sleep(%(first_sleep)s)
    if %(fail)s and event["n"] == 2:
        raise ValueError("boom")
    return {"ok": event["n"]}
"""


def app(tmp_path, first_sleep=0, fail=False):
    root = str(tmp_path / "task")
    write_handler(root, SIMPLE % {"first_sleep": first_sleep, "fail": fail})
    return root


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.close()


def redirect_env(root, **extra):
    return lambda_env(root, "coldstart_analyzer.handler.handler", COLDSTART_HANDLER="app.handler", **extra)


def test_direct_transport_cold_and_warm_records(tmp_path, collector):
    root = app(tmp_path)
    # outside Lambda (no AWS_LAMBDA_RUNTIME_API) the warm batch still waiting gets its try at exit
    env = redirect_env(root, COLDSTART_API_KEY="csa_test", COLDSTART_ENDPOINT=collector.url, EMULATOR_INVOCATIONS=3, COLDSTART_TRANSPORT="direct")
    del env["AWS_LAMBDA_RUNTIME_API"]
    outcome, _, proc = run_emulator(tmp_path, env, nice=False)
    assert [i["result"] for i in outcome["invocations"]] == [{"ok": 1}, {"ok": 2}, {"ok": 3}], proc.stderr
    assert wait_for(lambda: len(collector.records()) == 3)
    paths = sorted({r[0] for r in collector.requests})
    assert paths == ["/api/v1/ingest", "/api/v1/ingest/batch"]
    assert all(r[1]["X-API-Key"] == "csa_test" for r in collector.requests)
    cold = [r for r in collector.records() if r["cold_start"]]
    warm = [r for r in collector.records() if not r["cold_start"]]
    assert len(cold) == 1 and len(warm) == 2
    assert cold[0]["module_timings"]["./app"] > 0
    assert {r["start_kind"] for r in warm} == {"warm"}
    assert sorted(r["request_id"].split("-")[1] for r in warm) == ["2", "3"]
    assert all(r["execution_duration_ms"] >= 0 and r["billed_duration_ms"] >= 1 for r in warm)
    assert len({r["invocation_id"] for r in collector.records()}) == 3


def test_handler_error_passes_through_and_is_recorded(tmp_path):
    root = app(tmp_path, fail=True)
    outcome, records, proc = run_emulator(tmp_path, redirect_env(root, COLDSTART_TRANSPORT="logs", EMULATOR_INVOCATIONS=3), nice=False)
    assert [i["error"] for i in outcome["invocations"]] == [None, "ValueError: boom", None], proc.stderr
    assert len(records) == 3


def test_early_copy_of_a_long_first_invocation(tmp_path):
    root = app(tmp_path, first_sleep=0.8)
    outcome, records, proc = run_emulator(tmp_path, redirect_env(root, COLDSTART_TRANSPORT="logs"), nice=False)
    assert outcome["invocations"][0]["result"] == {"ok": 1}, proc.stderr
    assert [r.get("complete") for r in records] == [False, None]
    early, complete = records
    assert early["invocation_id"] == complete["invocation_id"]
    assert early["timestamp"] == complete["timestamp"]
    assert "execution_duration_ms" not in early and "memory_used_mb" not in early
    assert early["module_timings"] == complete["module_timings"]
    assert complete["execution_duration_ms"] >= 800


def test_no_early_copy_for_a_short_first_invocation(tmp_path):
    root = app(tmp_path)
    _, records, proc = run_emulator(tmp_path, redirect_env(root, COLDSTART_TRANSPORT="logs"), nice=False)
    assert [r.get("complete") for r in records] == [None], proc.stderr


def test_first_response_does_not_wait_for_a_silent_backend(tmp_path):
    silent = Collector(silent=True)
    try:
        root = app(tmp_path)
        env = redirect_env(root, COLDSTART_API_KEY="k", COLDSTART_ENDPOINT=silent.url, COLDSTART_TIMEOUT=3000, COLDSTART_TRANSPORT="direct", EMULATOR_INVOCATIONS=2)
        outcome, _, proc = run_emulator(tmp_path, env, nice=False)
        # the backend never answers and one attempt may wait 3 s: neither response waits for it
        assert [i["response_ms"] < 1000 for i in outcome["invocations"]] == [True, True], proc.stderr
    finally:
        silent.close()


def test_retried_until_acknowledged(tmp_path):
    flaky = Collector(statuses=[503, 500])
    try:
        root = app(tmp_path)
        env = redirect_env(root, COLDSTART_API_KEY="k", COLDSTART_ENDPOINT=flaky.url, COLDSTART_TRANSPORT="direct", EMULATOR_INVOCATIONS=2, EMULATOR_EVENT_SLEEP_MS=4000)
        run_emulator(tmp_path, env, nice=False)
        statuses = [r[3] for r in flaky.requests if r[0] == "/api/v1/ingest"]
        assert statuses == [503, 500, 202]
        ids = {r[2]["invocation_id"] for r in flaky.requests if r[0] == "/api/v1/ingest"}
        assert len(ids) == 1  # the same record each time: the backend stores it once
    finally:
        flaky.close()


def test_extension_stream_when_the_extension_is_installed(tmp_path, collector):
    extension = FakeExtension()
    try:
        root = app(tmp_path)
        marker = tmp_path / "coldstart"
        marker.write_text("")
        env = redirect_env(
            root,
            COLDSTART_API_KEY="csa_stream",
            COLDSTART_ENDPOINT=collector.url,
            COLDSTART_EXTENSION_PATH=str(marker),
            COLDSTART_EXTENSION_STREAM_PORT=extension.port,
            EMULATOR_INVOCATIONS=3,
        )
        outcome, _, proc = run_emulator(tmp_path, env, nice=False)
        assert len(outcome["invocations"]) == 3, proc.stderr
        assert wait_for(lambda: len(extension.records()) == 3)
        assert extension.lines[0] == {"coldstart": "hello", "api_key": "csa_stream"}
        assert [r["cold_start"] for r in extension.records()] == [True, False, False]
        assert collector.records() == []
    finally:
        extension.close()


def test_extension_stream_failure_falls_back_to_the_backend(tmp_path, collector):
    extension = FakeExtension(close_after_hello=True)
    try:
        root = app(tmp_path)
        marker = tmp_path / "coldstart"
        marker.write_text("")
        env = redirect_env(
            root,
            COLDSTART_API_KEY="k",
            COLDSTART_ENDPOINT=collector.url,
            COLDSTART_EXTENSION_PATH=str(marker),
            COLDSTART_EXTENSION_STREAM_PORT=extension.port,
            EMULATOR_INVOCATIONS=2,
            EMULATOR_EVENT_SLEEP_MS=2500,
        )
        _, _, proc = run_emulator(tmp_path, env, nice=False)
        assert wait_for(lambda: len(collector.records()) == 2), proc.stderr
        assert "stream" in proc.stderr
    finally:
        extension.close()


def test_analyze_in_code_and_lazy_imports(tmp_path):
    root = str(tmp_path / "task")
    write_handler(root, "import time\n_t = time.perf_counter()\nwhile time.perf_counter() - _t < 0.02: pass\n", "helper.py")
    write_handler(root, "def f():\n    return 1\n", "lazy_one.py")
    write_handler(
        root,
        "from coldstart_analyzer import analyze\nimport helper\n\n@analyze(transport='logs', sample_rate=0)\n"
        "def handler(event, context):\n    import lazy_one\n    return lazy_one.f()\n",
    )
    outcome, records, proc = run_emulator(tmp_path, lambda_env(root, "app.handler", EMULATOR_INVOCATIONS=3), nice=False)
    assert [i["result"] for i in outcome["invocations"]] == [1, 1, 1], proc.stderr
    # sample_rate 0: warm invocations are not recorded, the cold start always is
    assert len(records) == 1
    record = records[0]
    assert record["module_tree"]["coverage"] == "import"
    assert record["module_timings"]["./helper"] >= 20
    assert "./lazy_one" not in record["module_timings"]


def test_disabled_sdk_installs_nothing(tmp_path):
    root = app(tmp_path)
    outcome, records, proc = run_emulator(tmp_path, redirect_env(root, COLDSTART_TRANSPORT="logs", COLDSTART_ENABLED="false"), nice=False)
    assert outcome["invocations"][0]["result"] == {"ok": 1}, proc.stderr
    assert records == []


def test_redirect_without_coldstart_handler_fails_init(tmp_path):
    root = app(tmp_path)
    env = lambda_env(root, "coldstart_analyzer.handler.handler", COLDSTART_TRANSPORT="logs")
    outcome, _, proc = run_emulator(tmp_path, env, nice=False)
    assert proc.returncode == 3
    assert "Runtime.HandlerNotFound" in outcome["init_error"]


def test_redirect_with_a_path_handler(tmp_path):
    root = str(tmp_path / "task")
    write_handler(root, "", "src/__init__.py")
    write_handler(root, "def main(event, context):\n    return 'deep'\n", "src/app.py")
    env = lambda_env(root, "coldstart_analyzer.handler.handler", COLDSTART_HANDLER="src/app.main", COLDSTART_TRANSPORT="logs")
    outcome, records, proc = run_emulator(tmp_path, env, nice=False)
    assert outcome["invocations"][0]["result"] == "deep", proc.stderr
    assert "./src/app" in records[0]["module_timings"]
