"""Ground truth in fresh python3 processes: each distribution's (and own file's) self time within
max(1 ms, 5 %) of what its modules really spent, the self times adding up to the module-load time
within 5 %, the tree with the distributions' versions, lazy imports left out.

The truth is what each busy-wait really took (measured by the module itself; a wait can overshoot
if the process is descheduled as it ends). A distribution's self time also holds finding, reading
and compiling its files and its share of importlib's work, which is why the waits are tens of ms.
The measurement is retried once before failing: the machine is shared.
"""

import pytest

from fixture_builder import build
from helpers import lambda_env, run_emulator

NOMINAL = {
    "./app": 80,
    "./lib/util": 50,
    "alpha-dist": 160,
    "Beta-Pkg": 80,
    "Fancy-Name": 60,
    "nsp-one": 60,
    "nsp-two": 50,
    "circ": 100,
    "flaky-dist": 100,
    "pyc-only": 50,
}


@pytest.fixture(scope="module")
def task_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("accuracy") / "task"
    root.mkdir()
    has_cext = build(str(root))
    return str(root), has_cext


def measure(tmp_path, root, has_cext):
    outcome, records, proc = run_emulator(
        tmp_path, lambda_env(root, "coldstart_analyzer.handler.handler", COLDSTART_HANDLER="app.handler", COLDSTART_TRANSPORT="logs")
    )
    problems = []
    assert outcome is not None and outcome["init_error"] is None, proc.stderr
    cold = [r for r in records if r["cold_start"]]
    assert len(cold) == 1, (records, proc.stderr)
    record = cold[0]
    truth_ns = outcome["invocations"][0]["result"]["truth_ns"]
    nominal = dict(NOMINAL)
    if has_cext:
        nominal["cext-dist"] = 60
    timings = record["module_timings"]
    for key, ms in nominal.items():
        expected = truth_ns.get(key, 0) / 1e6
        if expected < ms - 0.01:
            problems.append("%s: the busy-waits took %.3f ms, less than %s" % (key, expected, ms))
        tolerance = max(1.0, 0.05 * expected)
        got = timings.get(key)
        if got is None or abs(got - expected) > tolerance:
            problems.append("%s: %s ms, truth %.3f ± %.3f" % (key, got, expected, tolerance))
    total = sum(timings.values())
    load_ms = record["module_tree"]["load_ms"]
    if abs(total - load_ms) > 0.05 * load_ms:
        problems.append("sum of self times %.3f vs module-load time %.3f" % (total, load_ms))
    return record, problems


def test_self_time_per_distribution_within_5_percent(task_root, tmp_path):
    root, has_cext = task_root
    record, problems = measure(tmp_path, root, has_cext)
    if problems:
        print("accuracy: retrying once after: %s" % "; ".join(problems))
        record, problems = measure(tmp_path, root, has_cext)
    assert problems == []

    timings = record["module_timings"]
    # the lazy import inside the handler is not init
    assert "lazy-dist" not in timings
    # the SDK's own modules are its overhead, not the function's
    assert not any(k.startswith("coldstart_analyzer") for k in timings)
    assert record["sdk_overhead_ms"] > 0
    # the standard library is attributed as such
    assert "stdlib:fractions" in timings
    tree = record["module_tree"]
    assert tree["coverage"] == "redirect"
    assert [c["name"] for c in tree["children"]] == ["./app"]
    app = tree["children"][0]
    assert app["total_ms"] >= sum(NOMINAL.values())
    below = {c["name"]: c for c in app.get("children", [])}
    # versions from the dist-info metadata; beta nested under alpha (alpha imports it)
    assert below["alpha-dist"]["version"] == "1.2.3"
    assert [c["name"] for c in below["alpha-dist"]["children"]] == ["Beta-Pkg"]
    assert below["alpha-dist"]["children"][0]["version"] == "0.4"
    assert below["alpha-dist"]["total_ms"] >= below["alpha-dist"]["self_ms"] + 80
    # the failing import and its retry: two loads, one failed, both timed
    assert below["flaky-dist"]["loads"] == 2 and below["flaky-dist"]["failed"] == 1
    assert below["circ"].get("loads", 1) == 1
    assert record["start_kind"] == "cold" and record["init_type"] == "on-demand"
    assert record["runtime_version"].startswith("python3.")
    assert record["module_source"] == "hooks"
    assert record["init_duration_ms"] >= tree["load_ms"]
