"""`paddlehot bench --tune` and `--shape-memory`: real packages, real child processes, real paddle.

The sweeps here are tiny (two settings, fractions of a second each): they check what the tuner
guarantees (outputs checked with the package's tolerances, a drifting setting never wins, the
p99 target is honoured, --write saves a serving.json serve can read), not how fast anything is.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from paddlehot_cli.bench.shapes import RandomShapeFeeds, parse_spec
from paddlehot_cli.bench.tuning.choose import rank
from paddlehot_cli.bench.tuning.settings import Grid, Setting, default_setting, parse_axis
from paddlehot_cli.bench.tuning.sweep import Result
from paddlehot_cli.core.serving_settings import read_settings
from paddlehot_cli.core.signature import TensorSpec
from paddlehot_cli.errors import UserError
from tests.conftest import MODELS, assert_one_line_error, cli
from tests.serve_fixtures.helpers import publish_copy

TINY = ("--threads", "1", "--pool-max", "1", "--batch-size", "1,2", "--onednn", "on",
        "--memory-optim", "off", "-d", "0.3", "-c", "2")


@pytest.fixture(scope="module")
def repo(exported, tmp_path_factory):
    repo = tmp_path_factory.mktemp("tune") / "repo"
    publish_copy(exported("demo:cnn", "pir", "1.0.0", 3), repo, "cnn", "1.0.0")
    return repo


def _result(setting: Setting, rps: float, p99: float, drift: bool = False) -> Result:
    level = {"throughput_rps": rps, "latency_ms": {"p99": p99, "p50": p99 / 2}, "errors": 0,
             "ok": 100, "peak_rss_mb": 300.0 + setting.threads}
    check = {"checked": True, "passed": not drift}
    return Result(setting, level, check)


def test_grid_always_holds_serve_defaults_and_drops_meaningless_delays():
    grid = Grid(threads=[2], pool_max=[1], batch_size=[1, 4], batch_delay_ms=[1.0, 5.0],
                onednn=[True], ir_optim=[True], memory_optim=[False], onednn_cache_capacity=[10])
    settings = grid.settings()
    assert settings[0] == default_setting()
    assert [s.batch_delay_ms for s in settings if s.threads == 2 and s.batch_size == 1] == [0.0]
    assert len(settings) == 1 + 1 + 2


def test_axis_parsing_is_strict():
    assert parse_axis("on,off,on", "--onednn", bool) == [True, False]
    assert parse_axis("0,10", "--onednn-cache-capacity", int) == [0, 10]
    for text, option, kind in (("0", "--threads", int), ("x", "--pool-max", int),
                               ("maybe", "--onednn", bool), ("", "--batch-size", int)):
        with pytest.raises(UserError):
            parse_axis(text, option, kind)


def test_drifting_setting_never_wins_and_slo_is_honoured():
    fast_drift = _result(Setting(threads=2), 900, 5, drift=True)
    fast = _result(Setting(batch_size=4, batch_delay_ms=2), 500, 30)
    slow = _result(default_setting(), 300, 8)
    results = [fast_drift, fast, slow]
    assert rank(results, "throughput", None) is fast
    assert fast_drift.rank is None
    assert rank(results, "throughput", 10) is slow and fast.meets_slo is False
    assert rank(results, "latency", None) is slow
    assert rank(results, "throughput", 1) is None  # nothing meets 1 ms


def test_random_shapes_agree_across_inputs_and_repeat():
    specs = [TensorSpec("ids", "int64", (-1, -1)), TensorSpec("mask", "float32", (-1, -1)),
             TensorSpec("feats", "float32", (-1, 4))]
    feeds = RandomShapeFeeds(specs, max_batch=3, max_len=50, seed=1)
    shapes = {feeds[n]["ids"].shape for n in range(200)}
    assert len(shapes) > 20 and all(1 <= b <= 3 and 1 <= n <= 50 for b, n in shapes)
    for n in range(20):
        f = feeds[n]
        assert f["ids"].shape == f["mask"].shape and f["feats"].shape == (f["ids"].shape[0], 4)
        np.testing.assert_array_equal(f["ids"], feeds[n]["ids"])
    assert parse_spec("random") is None and parse_spec("random-shapes:2,9") == (2, 9)
    with pytest.raises(UserError):
        parse_spec("random-shapes:2")
    with pytest.raises(UserError):
        RandomShapeFeeds([TensorSpec("x", "float32", (1, 4))])


def test_tune_ranks_checks_and_writes_serving_json(repo, tmp_path):
    out = tmp_path / "tune.json"
    proc = cli("bench", f"{repo}:cnn", "--tune", *TINY, "--write", "--json", out)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(out.read_text())
    assert doc["schema"] == "paddlehot.bench-tune/1" and len(doc["results"]) >= 2
    assert all(r["check"]["checked"] and r["check"]["passed"] for r in doc["results"])
    assert doc["winner"]["serve_command"].startswith(f"paddlehot serve {repo} --threads 1")
    assert doc["winner"]["serve_command"] in proc.stdout.replace("\n", "")
    written = read_settings(repo / "cnn")
    assert written is not None and written.given() == doc["winner"]["settings"]
    assert json.loads((repo / "cnn" / "serving.json").read_text())["tuned"]["version"] == "1.0.0"
    assert not (repo / "cnn" / "1.0.0" / "serving.json").exists()


def test_breathing_round_measures_the_winner_growing_from_pool_min(repo):
    """--tune reports the winner as serve runs it: from pool_min 1, grown under the same load."""
    from paddlehot_cli.bench.tuning.pool_choice import judge
    from paddlehot_cli.bench.tuning.report import breathing_line, breathing_summary
    from paddlehot_cli.bench.tuning.sweep import TuneRun, breathing_round
    from paddlehot_cli.bench.tuning.target import LoadSpec, resolve_target

    # a 12 s round: time for the niced keeper to create even on a busy box
    target, load = resolve_target(f"{repo}:cnn"), LoadSpec(concurrency=2, duration=8.0)
    setting = Setting(threads=1, pool_max=2)
    run = TuneRun(target, load)
    run.breathing = breathing_round(target, setting, load, pool_min=1, idle_s=30.0)
    assert "error" not in run.breathing, run.breathing
    pool = run.breathing["level"]["pool"]
    assert pool["min"] == 1 and pool["max"] == 2, pool
    assert pool["grown"] == 1 and pool["size"] == 2, run.breathing["level"]["timeline"]
    winner = _result(setting, 100.0, 10.0)
    winner.level["rss_after_mb"] = 400.0
    summary = breathing_summary(run, winner)
    assert summary["throughput_vs_fixed"] == round(summary["throughput_rps"] / 100.0, 3)
    assert summary["pool_min"] == 1 and summary["timeline"] and summary["seconds"] >= 10
    assert "as serve runs it, breathing (pool 1..2" in breathing_line(summary)
    # the same round judged against the fixed pool, as --tune chooses pool_min from it
    trial = judge(run.breathing, {"throughput_rps": 100.0, "p99_ms": 10.0})
    assert trial["throughput_vs_fixed"] == summary["throughput_vs_fixed"]
    assert trial["pool_full_after_s"] == summary["pool_full_after_s"] is not None
    assert trial["predictors"] == 1 and trial["load_s"] > 0


def test_unreachable_slo_recommends_nothing_and_writes_nothing(repo, tmp_path):
    model = tmp_path / "repo"
    shutil.copytree(repo, model)
    (model / "cnn" / "serving.json").unlink(missing_ok=True)
    proc = cli("bench", f"{model}:cnn", "--tune", *TINY, "--slo-p99", "0.0001", "--write")
    assert_one_line_error(proc, 1, "no setting to recommend")
    assert "no setting meets p99 <= 0.0001 ms" in proc.stdout
    assert not (model / "cnn" / "serving.json").exists()


def test_outputs_that_differ_from_validation_are_marked_drift_and_never_recommended(
        exported, tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(exported("demo:cnn", "pir", "1.0.0", 3), pkg)
    npz = pkg / "validation.npz"
    with np.load(npz) as data:
        arrays = {k: data[k] + (0.5 if ":out:" in k else 0) for k in data.files}
    with open(npz, "wb") as fh:
        np.savez(fh, **arrays)
    manifest = json.loads((pkg / "paddlehot.json").read_text())
    manifest["files"]["validation.npz"] = {"sha256": hashlib.sha256(npz.read_bytes()).hexdigest(),
                                           "bytes": npz.stat().st_size}
    (pkg / "paddlehot.json").write_text(json.dumps(manifest))
    proc = cli("bench", pkg, "--tune", *TINY)
    assert_one_line_error(proc, 1, "no setting to recommend")
    assert "drift" in proc.stdout and "values differ" in proc.stdout


@pytest.mark.parametrize("args, needle", [
    (("--tune", "--write"), "give the target as REPO:NAME"),
    (("--tune", "--objective", "speed"), "--objective must be one of"),
    (("--slo-p99", "5"), "only work with --tune"),
    (("--tune", "--threads", "1", "--onednn", "sometimes"), "malformed --onednn"),
    (("--tune", "--shape-memory"), "pick one"),
])
def test_tuning_mistakes_are_one_line_usage_errors(exported, args, needle):
    proc = cli("bench", exported("demo:cnn", "pir", "1.0.0", 3), *args)
    assert_one_line_error(proc, 2, needle)


def test_shape_memory_reports_rss_curves_per_cache_bound(exported, tmp_path):
    pkg = exported(f"{MODELS / 'two_inputs.py'}:make", "pir", "1.0.0", 0,
                   "--input", "feats:float32:[-1,4]", "--input", "ids:int64:[-1,-1]")
    out = tmp_path / "mem.json"
    proc = cli("bench", pkg, "--shape-memory", "-n", "60", "--input-data", "random-shapes:4,40",
               "--primitive-cache", "1024,16", "-d", "0.3", "--json", out)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(out.read_text())
    assert [(r["primitive_cache"], r["onednn_cache_capacity"]) for r in doc["variants"]] == [
        (1024, 0), (16, 0)]
    for row in doc["variants"]:
        assert row["curve"][-1][0] == 60 and row["rss_end_mb"] > 0
        assert row["fixed_throughput_rps"] > 0 and row["check"]["passed"]
