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
        # the hello asks whether the extension builds warm records; this one does not offer to
        assert extension.lines[0] == {"coldstart": "hello", "api_key": "csa_stream", "warm": "platform"}
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


def test_deployment_identity(tmp_path):
    """function_version from Lambda's environment (else the context); code_id the same for the same
    code, different when an own file, the handler or a distribution's version changes; the early copy
    goes without it, warm records reuse the cold start's."""
    import shutil

    from fixture_builder import _dist_info

    def make_distribution(root, name, version, module, source):
        for entry in os.listdir(root):
            if entry.startswith(name.replace("-", "_") + "-"):
                shutil.rmtree(os.path.join(root, entry))
        write_handler(root, source, module + ".py")
        _dist_info(root, name, version, [module + ".py"], [module])

    root = str(tmp_path / "task")
    write_handler(root, "X = 1\n", "lib/conf.py")
    write_handler(root, "", "lib/__init__.py")
    make_distribution(root, "dep-dist", "1.0", "depmod", "VALUE = 1\n")
    write_handler(root, "import lib.conf, depmod, time\ndef handler(event, context):\n    return 1\n")

    def run(**extra):
        _, records, proc = run_emulator(tmp_path, redirect_env(root, COLDSTART_TRANSPORT="logs", EMULATOR_INVOCATIONS=2, **extra), nice=False)
        assert len(records) == 2, proc.stderr
        return records

    first = run(AWS_LAMBDA_FUNCTION_VERSION="7")
    assert [r["function_version"] for r in first] == ["7", "7"]
    ids = {r["code_id"] for r in first}
    assert len(ids) == 1 and len(ids.pop()) == 32
    code = first[0]["code_id"]
    # the same code in another process, the version from the context ($LATEST in the emulator)
    again = run()
    assert again[0]["code_id"] == code and again[0]["function_version"] == "$LATEST"
    write_handler(root, "X = 2\n", "lib/conf.py")
    changed_own = run()[0]["code_id"]
    assert changed_own != code
    make_distribution(root, "dep-dist", "1.1", "depmod", "VALUE = 1\n")
    changed_dist = run()[0]["code_id"]
    assert changed_dist not in (code, changed_own)
    # a long first invocation: the early copy has no code_id yet, the complete record has it
    write_handler(root, "import lib.conf, depmod, time\ndef handler(event, context):\n    time.sleep(0.6)\n    return 1\n")
    _, records, proc = run_emulator(tmp_path, redirect_env(root, COLDSTART_TRANSPORT="logs"), nice=False)
    assert [("code_id" in r, r.get("complete")) for r in records] == [(False, False), (True, None)], proc.stderr
    assert records[1]["code_id"] not in (code, changed_own, changed_dist)  # the handler changed


SNAP_APP = """import time
from snapshot_restore_py import register_after_restore, register_before_snapshot
import helper

@register_before_snapshot
def warm_up():
    import warmed  # init's work before the snapshot: timed as init

@register_after_restore
def reconnect():
    import reconnected  # after the restore: part of the restore, not of the init's modules
    time.sleep(0.15)

def handler(event, context):
    return event["n"]
"""


def busy_module(ms):
    return "import time\n_t = time.perf_counter()\nwhile time.perf_counter() - _t < %s: pass\n" % (ms / 1000)


def test_snap_start_restore_is_timed_as_a_restore(tmp_path):
    root = str(tmp_path / "task")
    write_handler(root, busy_module(40), "helper.py")
    write_handler(root, busy_module(30), "warmed.py")
    write_handler(root, busy_module(10), "reconnected.py")
    write_handler(root, SNAP_APP)
    # the snapshot waits 1.5 s before this environment restores it; a restore takes the after_restore
    # hook's 150 ms (and 10 ms of import) plus the runtime's own steps
    env = redirect_env(root, COLDSTART_TRANSPORT="logs", AWS_LAMBDA_INITIALIZATION_TYPE="snap-start", EMULATOR_SNAPSHOT_PAUSE_MS=1500, EMULATOR_INVOCATIONS=2)
    outcome, records, proc = run_emulator(tmp_path, env, nice=False)
    assert [i["result"] for i in outcome["invocations"]] == [1, 2], proc.stderr
    cold, warm = records
    assert cold["cold_start"] and cold["start_kind"] == "cold" and cold["init_type"] == "snap-start"
    assert 150 <= cold["init_duration_ms"] < 1400, cold["init_duration_ms"]
    snap = cold["module_tree"]["snap_start"]
    assert snap["restore_seen_by"] == "restore_next"
    assert abs(snap["restore_ms"] - cold["init_duration_ms"]) <= 1
    # the init that made the snapshot: its modules (the before_snapshot hook's included)
    assert snap["init_ms"] >= 70
    assert cold["module_timings"]["./helper"] >= 40 and cold["module_timings"]["./warmed"] >= 30
    assert "./reconnected" not in cold["module_timings"]
    assert warm["start_kind"] == "warm" and not warm["cold_start"]


def test_snap_start_without_a_client_to_hook_uses_after_restore(tmp_path):
    """A runtime whose client the SDK cannot wrap: the after_restore hook dates the restore."""
    root = str(tmp_path / "task")
    write_handler(root, busy_module(10), "helper.py")
    write_handler(root, busy_module(5), "warmed.py")
    write_handler(root, busy_module(5), "reconnected.py")
    write_handler(root, SNAP_APP)
    env = redirect_env(root, COLDSTART_TRANSPORT="logs", AWS_LAMBDA_INITIALIZATION_TYPE="snap-start", EMULATOR_SNAPSHOT_PAUSE_MS=800, EMULATOR_HIDE_CLIENT=1)
    del env["AWS_LAMBDA_RUNTIME_API"]  # without the client hook, the record leaves at exit
    outcome, records, proc = run_emulator(tmp_path, env, nice=False)
    assert outcome["invocations"][0]["result"] == 1, proc.stderr
    snap = records[0]["module_tree"]["snap_start"]
    assert snap["restore_seen_by"] == "after_restore"
    assert 150 <= records[0]["init_duration_ms"] < 700


def test_snap_start_without_any_restore_signal_sends_no_init_time(tmp_path):
    """Neither the hooks nor the client: the record says snap-start and cold, without a made-up
    init_duration_ms (the gap since the snapshot's init is not a restore's duration)."""
    root = app(tmp_path)
    env = redirect_env(root, COLDSTART_TRANSPORT="logs", AWS_LAMBDA_INITIALIZATION_TYPE="snap-start", EMULATOR_SNAPSHOT_PAUSE_MS=300, EMULATOR_HIDE_CLIENT=1, EMULATOR_RESTORE_HOOKS=0)
    del env["AWS_LAMBDA_RUNTIME_API"]
    outcome, records, proc = run_emulator(tmp_path, env, nice=False)
    assert outcome["invocations"][0]["result"] == {"ok": 1}, proc.stderr
    record = records[0]
    assert record["start_kind"] == "cold" and record["init_type"] == "snap-start"
    assert "init_duration_ms" not in record
    assert "restore_ms" not in record["module_tree"]["snap_start"]
    assert record["module_timings"]["./app"] > 0


def extension_env(tmp_path, root, port, collector, **extra):
    marker = tmp_path / "coldstart"
    marker.write_text("")
    return redirect_env(root, COLDSTART_API_KEY="k", COLDSTART_ENDPOINT=collector.url, COLDSTART_EXTENSION_PATH=str(marker), COLDSTART_EXTENSION_STREAM_PORT=port, **extra)


def test_warm_records_left_to_an_extension_that_offers(tmp_path, collector):
    """The extension offers to build warm records from Lambda's reports: the SDK sends its cold-start
    record and one template, and writes nothing for a warm invocation."""
    extension = FakeExtension(offer=True)
    try:
        root = app(tmp_path)
        env = extension_env(tmp_path, root, extension.port, collector, EMULATOR_INVOCATIONS=3, COLDSTART_SAMPLE_RATE="0.5", AWS_LAMBDA_FUNCTION_VERSION="4")
        outcome, _, proc = run_emulator(tmp_path, env, nice=False)
        assert len(outcome["invocations"]) == 3, proc.stderr
        assert wait_for(lambda: len(extension.delegations()) == 1)
        assert [r["cold_start"] for r in extension.records()] == [True]
        delegate = extension.delegations()[0]
        assert delegate["sample_rate"] == 0.5
        template = delegate["record"]
        cold = extension.records()[0]
        # what is the same for every invocation of the process, nothing of one invocation
        for key in ("function_name", "runtime_version", "sdk_version", "module_source", "function_version", "code_id", "memory_allocated_mb", "region"):
            assert template[key] == cold[key], key
        for key in ("invocation_id", "request_id", "timestamp", "cold_start", "start_kind", "execution_duration_ms", "memory_used_mb"):
            assert key not in template, key
        assert collector.records() == []
    finally:
        extension.close()


def test_invocations_left_and_not_done_go_direct_when_the_stream_fails(tmp_path, collector):
    """The stream ends after the delegate line, before any "done": the SDK builds those warm records
    itself and sends them to the backend."""
    extension = FakeExtension(offer=True, close_after_delegate=True)
    try:
        root = app(tmp_path)
        env = extension_env(tmp_path, root, extension.port, collector, EMULATOR_INVOCATIONS=3, EMULATOR_EVENT_SLEEP_MS=300)
        del env["AWS_LAMBDA_RUNTIME_API"]  # the warm batch still waiting is sent at exit
        outcome, _, proc = run_emulator(tmp_path, env, nice=False)
        assert len(outcome["invocations"]) == 3, proc.stderr
        assert wait_for(lambda: len(collector.records()) >= 2), proc.stderr
        warm = collector.records()
        assert sorted(r["request_id"].split("-")[1] for r in warm) == ["2", "3"]
        assert all(not r["cold_start"] and r["start_kind"] == "warm" for r in warm)
        assert "stream" in proc.stderr
    finally:
        extension.close()


def test_invocations_the_extension_is_done_with_are_not_sent_again(tmp_path, collector):
    """"done" for the first warm invocation, then the stream ends: only the invocations after it
    (here the third, which finds the stream down) reach the backend from the SDK."""
    extension = FakeExtension(offer=True, done_then_close=True)
    try:
        root = app(tmp_path)
        env = extension_env(tmp_path, root, extension.port, collector, EMULATOR_INVOCATIONS=3, EMULATOR_EVENT_SLEEP_MS=800)
        del env["AWS_LAMBDA_RUNTIME_API"]
        outcome, _, proc = run_emulator(tmp_path, env, nice=False)
        assert len(outcome["invocations"]) == 3, proc.stderr
        assert wait_for(lambda: len(collector.records()) >= 1), proc.stderr
        assert [r["request_id"].split("-")[1] for r in collector.records()] == ["3"]
    finally:
        extension.close()


def test_an_extension_without_the_stream_gets_records_over_http(tmp_path, collector):
    """Nothing listens on the stream port (an extension layer older than the stream): the records go
    to the extension's HTTP endpoint; when that does not answer either, to the backend."""
    import socket

    local = Collector()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # a port nothing listens on: connections are refused
    try:
        root = app(tmp_path)
        env = extension_env(tmp_path, root, port, collector, EMULATOR_INVOCATIONS=2, COLDSTART_EXTENSION_PORT=local.url.rsplit(":", 1)[1])
        outcome, _, proc = run_emulator(tmp_path, env, nice=False)
        assert len(outcome["invocations"]) == 2, proc.stderr
        assert wait_for(lambda: len(local.records()) == 2), proc.stderr
        assert {r[0] for r in local.requests} == {"/api/v1/ingest"}
        assert [r["cold_start"] for r in local.records()] == [True, False]
        assert collector.records() == []
        # neither the stream nor the HTTP endpoint: the backend directly
        env = extension_env(tmp_path, root, port, collector, EMULATOR_INVOCATIONS=2, COLDSTART_EXTENSION_PORT=port)
        del env["AWS_LAMBDA_RUNTIME_API"]
        run_emulator(tmp_path, env, nice=False)
        assert wait_for(lambda: len(collector.records()) == 2)
    finally:
        local.close()
