"""`python3 -m coldstart_analyzer profile`: fresh interpreters, the report, --json, --budget and
--compare with the Node.js CLI's exit statuses, and the rule engine it applies."""

import json
import os
import subprocess
import sys

import pytest

from helpers import SDK, write_handler

BUSY = "import time\n_t = time.perf_counter()\nwhile time.perf_counter() - _t < %s: pass\n"


def dist(root, name, version, module, ms):
    write_handler(root, BUSY % (ms / 1000), module + "/__init__.py")
    info = os.path.join(root, "%s-%s.dist-info" % (name.replace("-", "_"), version))
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version))
    with open(os.path.join(info, "top_level.txt"), "w") as f:
        f.write(module + "\n")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("profiled"))
    dist(root, "pandas", "2.2.0", "pandas", 60)
    dist(root, "small-dist", "1.0", "small", 15)
    write_handler(root, "", "src/__init__.py")
    write_handler(root, BUSY % 0.02 + "import pandas, small\n\ndef handler(event, context):\n    return 1\n\ndef other(event, context):\n    return 2\n", "src/app.py")
    write_handler(root, "import does_not_exist\n", "broken.py")
    return root


def profile(*args, cwd=None):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": SDK, "COLDSTART_API_KEY": "must-not-be-used"}
    return subprocess.run([sys.executable, "-m", "coldstart_analyzer", "profile"] + list(args), env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_json_profile_of_a_file(task, tmp_path):
    proc = profile(os.path.join(task, "src", "app.py"), "--runs", "2", "--json", "--budget", "100000")
    assert proc.returncode == 0, proc.stderr
    p = json.loads(proc.stdout)
    assert (p["schema"], p["version"], p["runs"], len(p["runs_detail"])) == ("coldstart-profile", 1, 2, 2)
    # the file in a package: the task root is above the package, the handler named as Lambda names it
    assert p["task_root"] == task and p["handler"] == "src/app.handler"
    assert p["runtime"] == "python%d.%d" % sys.version_info[:2]
    modules = {m["name"]: m for m in p["modules"]}
    assert modules["pandas"]["self_ms"] >= 60 and modules["pandas"]["version"] == "2.2.0" and modules["pandas"]["seen_in"] == 1
    assert modules["small-dist"]["self_ms"] >= 15
    assert modules["./src/app"]["self_ms"] >= 20
    assert p["load_ms"]["median"] >= 95 and p["init_ms"]["median"] > p["load_ms"]["median"]
    assert p["load_ms"]["min"] <= p["load_ms"]["median"] <= p["load_ms"]["max"]
    top = p["tree"][0]
    assert top["name"] == "./src/app" and {c["name"] for c in top["children"]} >= {"pandas", "small-dist"}
    # the Python rules, picked by the runtime: pandas' own rule, not a Node.js one
    assert [r["rule_id"] for r in p["recommendations"] if r["module"] == "pandas"] == ["python-pandas"]
    assert p["budget"] == {"limit_ms": 100000, "median_ms": p["load_ms"]["median"], "exceeded": False}
    run = p["runs_detail"][0]
    assert len(run["code_id"]) == 32 and run["module_tree"]["coverage"] == "redirect"
    assert len({r["code_id"] for r in p["runs_detail"]}) == 1

    # --compare with the earlier output; --budget exceeded: exit 1, said in the text report
    previous = tmp_path / "before.json"
    previous.write_text(proc.stdout)
    text = profile("src/app.other", "--runs", "1", "--budget", "5", "--compare", str(previous), "--task-root", task)
    assert text.returncode == 1, text.stderr
    out = text.stdout
    assert out.startswith("coldstart profile: src/app.other\n1 run, Python ")
    assert "module load" in out and "SDK overhead" in out
    assert "pandas 2.2.0" in out and "python-pandas" in out
    assert "Compared with the previous profile (2 runs)" in out
    assert "Budget exceeded: median module load" in out


def test_failures_and_usage(task):
    broken = profile(os.path.join(task, "broken.py"), "--runs", "2")
    assert broken.returncode == 2
    assert "failed to load (run 1)" in broken.stderr and "does_not_exist" in broken.stderr
    missing = profile("src/app.nope", "--runs", "1", "--task-root", task)
    assert missing.returncode == 2 and "Runtime.HandlerNotFound" in missing.stderr
    assert profile("--runs", "0", "app.py").returncode == 2
    usage = profile()
    assert usage.returncode == 2 and "no handler given" in usage.stderr
    assert profile(os.path.join(task, "nothing.py")).returncode == 2
    bad_compare = profile(os.path.join(task, "src", "app.py"), "--compare", os.path.join(task, "src", "app.py"))
    assert bad_compare.returncode == 2 and "app.py: not JSON" in bad_compare.stderr


def test_rules_engine_matches_the_servers_semantics():
    from coldstart_analyzer._cli import default_rules_file
    from coldstart_analyzer._rules import RulesError, glob_match, parse_rules, recommend

    from coldstart_analyzer._rules import load_rules

    table = load_rules(default_rules_file())

    def one(name, ms, version=None, seen=1.0, runtime="python3.12"):
        return recommend(table, {name: {"p50_ms": ms, "version": version, "seen_in": seen}}, runtime, None)

    assert one("boto3", 200)[0]["rule_id"] == "python-boto3"
    assert one("boto3", 200, runtime="nodejs20.x")[0]["rule_id"] == "large-module"  # no Python advice for Node.js
    assert one("pydantic", 100, "1.10.2")[0]["rule_id"] == "python-pydantic-v1"
    assert one("pydantic", 100, "2.5.0")[0]["rule_id"] == "python-pydantic-v2-eager"
    assert one("heavy-thing", 150)[0] == dict(one("heavy-thing", 150)[0], rule_id="python-large-module", potential_savings_ms=45)
    assert one("heavy-thing", 150, seen=0.25)[0]["rule_id"] == "python-large-module-sometimes-loaded"
    assert one("pandas", 9.999) == [] and one("pandas", 10)[0]["potential_savings_ms"] == 8  # half away from zero
    own = recommend(table, {"./app": {"p50_ms": 200}, "boto3": {"p50_ms": 30}}, "python3.12", 230)
    assert [(r["module"], r["rule_id"]) for r in own] == [("(own code)", "python-own-code-dominates"), ("./app", "python-large-module"), ("boto3", "python-boto3")]
    assert glob_match("@scope/*", "@scope/a/b") and not glob_match("@scope/*", "@scopeX/a")
    with pytest.raises(RulesError):
        parse_rules({"version": 1, "min_module_ms": 10, "rules": [{"id": "x", "match": {"pattern": "nostar"}, "issue": "i", "suggestion": "s", "evidence": "e", "savings_share": 0.5}]})
