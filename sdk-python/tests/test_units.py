"""Unit tests: configuration, classification, the recorder and hooks in this process, the report's
caps, attribution, the handler resolution, the transports' bounds."""

import importlib
import importlib.machinery
import importlib.util
import io
import json
import os
import sys
import threading
import time

import pytest

from coldstart_analyzer import _config, _delivery, _records, _redirect, _report, _runtime
from coldstart_analyzer._attribution import Attributor, _module_file_key
from coldstart_analyzer._hooks import ImportHooks
from coldstart_analyzer._recorder import Node, Recorder
from helpers import Collector, wait_for


# -- configuration ---------------------------------------------------------------------------------
def test_option_beats_environment_beats_default():
    env = {"COLDSTART_SAMPLE_RATE": "0.5", "COLDSTART_ENDPOINT": "http://env:1/", "COLDSTART_API_KEY": "envkey\n"}
    config = _config.resolve_config({"sample_rate": 0.25}, env)
    assert config.sample_rate == 0.25
    assert config.endpoint == "http://env:1"
    assert config.api_key == "envkey"
    assert config.timeout_ms == 1000 and config.transport == "auto" and config.enabled
    assert _config.resolve_config({}, {}).endpoint == "https://api.coldstart.dev"
    with pytest.raises(AttributeError):
        config.sample_rate = 1  # frozen


def test_bad_values_fall_back_and_warn_once(capsys):
    env = {"COLDSTART_SAMPLE_RATE": "2", "COLDSTART_TIMEOUT": "-5", "COLDSTART_TRANSPORT": "carrier-pigeon", "COLDSTART_ENABLED": "maybe"}
    config = _config.resolve_config({"endpoint": "ftp://x"}, env)
    assert (config.sample_rate, config.timeout_ms, config.transport, config.enabled) == (1.0, 1000, "auto", True)
    assert config.endpoint == "https://api.coldstart.dev" and not config.endpoint_from_option
    err = capsys.readouterr().err
    assert "ignoring invalid COLDSTART_SAMPLE_RATE" in err and "ignoring invalid endpoint" in err
    assert "api_key" not in repr(_config.resolve_config({"api_key": "secret"}, {})) or "secret" not in repr(
        _config.resolve_config({"api_key": "secret"}, {})
    )


# -- classification ----------------------------------------------------------------------------------
def test_start_kinds():
    assert _runtime.classify_start(False, None, None) == "warm"
    assert _runtime.classify_start(True, "provisioned-concurrency", 50000) == "provisioned"
    assert _runtime.classify_start(True, "on-demand", 10001) == "proactive"
    assert _runtime.classify_start(True, "on-demand", 10000) == "cold"
    assert _runtime.classify_start(True, "snap-start", None) == "cold"


def test_runtime_version_and_architecture():
    assert _records.runtime_version("AWS_Lambda_python3.12") == "python3.12"
    assert _records.runtime_version(None, (3, 11, 2)) == "python3.11.2"
    assert _records.architecture("aarch64") == "arm64"
    assert _records.architecture("x86_64") == "x86_64"
    assert _records.architecture("riscv64") is None


def test_proactive_init_leaves_the_idle_gap_out():
    runtime = _runtime.Runtime(coverage="import")
    runtime.recorder.last_exit = time.perf_counter_ns() - 12_000_000_000  # init ended 12 s ago
    cold = runtime.close_init()
    assert cold.start_kind == "proactive"
    age_ms = (_runtime._process_age_s() or 0) * 1000
    assert cold.init_ms <= age_ms - 11_900


def test_ids_and_timestamps():
    ident = _records.new_id()
    assert len(ident) == 36 and ident[14] == "4"
    assert _records.iso_utc(0.5) == "1970-01-01T00:00:00.500Z"


# -- recorder and hooks in this process ------------------------------------------------------------
@pytest.fixture
def modules_dir(tmp_path):
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n.startswith("csa_unit_")]:
        del sys.modules[name]


def _busy_module(path, ms, imports=""):
    """A module that busy-waits `ms` and notes how long the wait really took (builtins.csa_waits)."""
    path.write_text(
        imports + "import builtins, time\n_t = time.perf_counter()\nwhile time.perf_counter() - _t < %s: pass\n"
        "builtins.__dict__.setdefault('csa_waits', {})[__name__] = time.perf_counter() - _t\n" % (ms / 1000)
    )


def test_self_and_inclusive_time_and_loader_restored(modules_dir):
    _busy_module(modules_dir / "csa_unit_child.py", 40)
    _busy_module(modules_dir / "csa_unit_parent.py", 10, "import csa_unit_child\n")
    recorder = Recorder()
    hooks = ImportHooks(recorder)
    hooks.install()
    try:
        # a spec looked up without loading must leave no open load behind
        assert importlib.util.find_spec("csa_unit_child") is not None
        import csa_unit_parent  # noqa: F401
    finally:
        hooks.uninstall()
        recorder.close()
    assert hooks not in sys.meta_path
    parent = recorder.root.children["csa_unit_parent"]
    child = parent.children["csa_unit_child"]
    # each gets its own wait (as long as it really took), and the child's is not in the parent's
    # self time: counted twice, the parent would be over its wait plus the child's 40 ms. The
    # margin above each wait (finding, reading, compiling; a preemption on a loaded machine) is
    # 30 ms: below the child's wait, so double counting still fails
    import builtins

    waits = builtins.csa_waits
    assert waits["csa_unit_child"] >= 0.040
    assert waits["csa_unit_parent"] <= parent.self_ns / 1e9 < waits["csa_unit_parent"] + 0.030
    assert waits["csa_unit_child"] <= child.self_ns / 1e9 < waits["csa_unit_child"] + 0.030
    assert parent.inclusive_ns >= parent.self_ns + child.self_ns
    assert abs(recorder.load_ns - parent.inclusive_ns) < 1000
    # the real loader again, on the module and its spec
    module = sys.modules["csa_unit_parent"]
    assert type(module.__loader__) is importlib.machinery.SourceFileLoader
    assert type(module.__spec__.loader) is importlib.machinery.SourceFileLoader


def test_imports_on_other_threads_and_after_close_are_not_recorded(modules_dir):
    _busy_module(modules_dir / "csa_unit_thread.py", 1)
    _busy_module(modules_dir / "csa_unit_late.py", 1)
    recorder = Recorder()
    hooks = ImportHooks(recorder)
    hooks.install()
    try:
        thread = threading.Thread(target=lambda: importlib.import_module("csa_unit_thread"))
        thread.start()
        thread.join()
        recorder.close()
        importlib.import_module("csa_unit_late")
    finally:
        hooks.uninstall()
    assert "csa_unit_thread" in sys.modules and "csa_unit_late" in sys.modules
    assert recorder.root.children is None


def test_failed_import_is_timed_and_the_error_unchanged(modules_dir):
    (modules_dir / "csa_unit_broken.py").write_text("raise KeyError('mine')\n")
    recorder = Recorder()
    hooks = ImportHooks(recorder)
    hooks.install()
    try:
        with pytest.raises(KeyError, match="mine"):
            import csa_unit_broken  # noqa: F401
        with pytest.raises(ModuleNotFoundError):
            import csa_unit_missing  # noqa: F401
    finally:
        hooks.uninstall()
        recorder.close()
    node = recorder.root.children["csa_unit_broken"]
    assert node.loads == 1 and node.failed == 1
    assert "csa_unit_missing" not in recorder.root.children


# -- the report ----------------------------------------------------------------------------------
def _tree(children):
    root = Node("(init)", None)
    root.children = {}
    for name, self_ms in children:
        node = Node(name, None)
        node.self_ns = node.inclusive_ns = int(self_ms * 1e6)
        node.loads = 1
        root.children[name] = node
    return root


def test_module_timings_cap():
    timings = _report.module_timings({"m%d" % i: (i + 1) * 1000 for i in range(310)})
    assert len(timings) == 300
    assert timings["(other)"] == pytest.approx(sum((i + 1) / 1000 for i in range(11)))
    assert timings["m309"] == 0.31


def test_tree_caps_and_fold():
    root = _tree([("pkg%d" % i, i + 1) for i in range(12)])
    folded = _report.fold(root, lambda name, origin: (name, "1.0"))
    recorder = Recorder()
    recorder.load_ns = 78_000_000
    tree = _report.module_tree(recorder, folded, "redirect")
    names = [c["name"] for c in tree["children"]]
    assert names[:8] == ["pkg%d" % i for i in range(11, 3, -1)] and names[8] == "(other)"
    assert tree["children"][8]["packages"] == 4 and tree["truncated"] is True
    assert tree["children"][0]["version"] == "1.0"


def test_fold_merges_modules_of_one_distribution():
    root = Node("(init)", None)
    a = Node("yaml", None)
    a.self_ns, a.inclusive_ns, a.loads = 5, 20, 1
    b = Node("_yaml", None)
    b.self_ns, b.inclusive_ns, b.loads = 15, 15, 1
    a.children = {"_yaml": b}
    root.children = {"yaml": a}
    folded = _report.fold(root, lambda name, origin: ("PyYAML", "6.0"))
    assert list(folded.children) == ["PyYAML"]
    node = folded.children["PyYAML"]
    assert (node.self_ns, node.inclusive_ns, node.loads, node.children) == (20, 20, 1, {})


# -- attribution ---------------------------------------------------------------------------------
def test_attribution_of_this_interpreter():
    attributor = Attributor(os.getcwd())
    assert attributor.attribute("json", json.__file__) == ("stdlib:json", None)
    assert attributor.attribute("sys", "built-in") == ("stdlib:sys", None)
    import _json

    assert attributor.attribute("_json", getattr(_json, "__file__", "built-in"))[0] == "stdlib:_json"
    pytest_dist = attributor.attribute("_pytest.main", sys.modules["_pytest.main"].__file__)
    assert pytest_dist[0] == "pytest" and pytest_dist[1]


def test_own_file_keys():
    assert _module_file_key("app/handlers/payment.py") == "./app/handlers/payment"
    assert _module_file_key("app/__init__.py") == "./app"
    assert _module_file_key("fast.cpython-311-x86_64-linux-gnu.so") == "./fast"


# -- handler resolution ----------------------------------------------------------------------------
def test_resolve_like_lambda(modules_dir):
    pkg = modules_dir / "csa_unit_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("def main(e, c):\n    return 'main'\n")
    assert _redirect.resolve("csa_unit_pkg/mod.main")(None, None) == "main"
    assert _redirect.resolve("csa_unit_pkg.mod.main")(None, None) == "main"
    with pytest.raises(_redirect.HandlerError, match="MalformedHandlerName"):
        _redirect.resolve("nodot")
    with pytest.raises(_redirect.HandlerError, match="ImportModuleError"):
        _redirect.resolve("csa_unit_nowhere.main")
    with pytest.raises(_redirect.HandlerError, match="BuiltInModuleConflict"):
        _redirect.resolve("sys.main")
    missing = _redirect.resolve("csa_unit_pkg.mod.absent")
    with pytest.raises(_redirect.HandlerError, match="HandlerNotFound"):
        missing({}, None)


# -- wrapping ----------------------------------------------------------------------------------------
def test_analyze_wraps_once_and_not_without_a_key(monkeypatch):
    import coldstart_analyzer

    monkeypatch.delenv("COLDSTART_API_KEY", raising=False)

    def handler(event, context):
        return event

    assert coldstart_analyzer.analyze(handler) is handler  # no key, not the logs transport
    wrapped = coldstart_analyzer.analyze(handler, api_key="k", endpoint="http://127.0.0.1:9")
    assert wrapped is not handler and wrapped.__name__ == "handler"
    assert coldstart_analyzer.analyze(wrapped, api_key="k") is wrapped
    assert coldstart_analyzer.analyze(handler, api_key="k", enabled=False) is handler


# -- transports --------------------------------------------------------------------------------------
def _record(n=0, size=0):
    return {"function_name": "f", "invocation_id": "id-%d" % n, "timestamp": "2026-01-01T00:00:00.000Z", "cold_start": True, "pad": "x" * size}


def test_logs_line_without_the_tree_when_too_long():
    out = io.StringIO()
    sink = _delivery.LogsSink(out)
    record = dict(_record(), module_tree={"children": ["x" * 300_000]}, module_timings={"a": 1.0})
    assert sink.cold(record).is_set()
    line = json.loads(out.getvalue())
    assert "module_tree" not in line["coldstart_record"] and line["coldstart_record"]["module_timings"] == {"a": 1.0}


def test_refused_key_is_not_retried(capsys):
    collector = Collector(statuses=[401])
    try:
        from coldstart_analyzer._worker import Worker

        sender = _delivery.DirectSender(_config.resolve_config({"endpoint": collector.url, "api_key": "bad"}, {}), Worker())
        assert sender.cold(_record()).wait(5)
        assert wait_for(lambda: sender.pending() == 0)
        time.sleep(1.5)
        assert len(collector.requests) == 1
        assert "refused the API key" in capsys.readouterr().err
        assert "bad" not in capsys.readouterr().err
    finally:
        collector.close()


def test_kept_records_are_bounded():
    from coldstart_analyzer._worker import Worker

    # an endpoint nobody listens on: every record is kept for retries, within the bounds
    sender = _delivery.DirectSender(_config.resolve_config({"endpoint": "http://127.0.0.1:9", "api_key": "k"}, {}), Worker())
    for n in range(40):
        sender.cold(_record(n))
    assert len(sender._kept) == _delivery.MAX_KEPT
    for n in range(5):
        sender.cold(_record(100 + n, size=2 * 1024 * 1024))
    assert sender._kept_bytes <= _delivery.MAX_KEPT_BYTES
    for n in range(_delivery.MAX_QUEUE + 10):
        sender._warm.append({}) if n < _delivery.MAX_QUEUE else sender.warm({})
    assert len(sender._warm) == _delivery.MAX_QUEUE
