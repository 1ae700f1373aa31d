"""`bench --tune` chooses pool_min and pool_idle_s (issue 27, item 5): the choice over
measured-looking rounds, then one real `--tune --write` whose serving.json serve applies."""

from __future__ import annotations

import json

import pytest

from paddlehot_cli.bench.tuning.pool_choice import (
    candidates,
    choose,
    idle_timeout,
    judge,
    run_trials,
    served_settings,
)
from paddlehot_cli.bench.tuning.settings import Setting
from paddlehot_cli.bench.tuning.sweep import Result
from paddlehot_cli.core.serving_settings import ServingSettings, read_settings, write_settings
from tests.conftest import cli
from tests.serve_fixtures.helpers import publish_copy

FIXED = {"throughput_rps": 1000.0, "p99_ms": 4.0, "measured_in": "final round"}


def _round(pool_min: int, rps: float, p99: float, pool_max: int = 4) -> dict:
    """A breathing round as sweep.breathing_round returns it (the pool full after 2 s)."""
    timeline = [{"t_s": t, "rss_mb": 300.0, "pool_size": pool_min if t < 2 else pool_max}
                for t in range(12)]
    return {"pool_min": pool_min, "pool_max": pool_max, "pool_idle_s": 30.0,
            "idle_rss_mb": 250.0, "load_s": 0.2 * pool_min, "predictors": pool_min,
            "level": {"throughput_rps": rps, "latency_ms": {"p99": p99}, "duration_s": 12.0,
                      "timeline": timeline}}


def _idle() -> dict:
    return idle_timeout(0.2)


def test_smallest_pool_min_whose_burst_keeps_up_is_chosen():
    rounds = {1: _round(1, 950.0, 7.2), 2: _round(2, 990.0, 5.0), 3: _round(3, 1000.0, 4.0)}
    ran: list[int] = []
    trials, last = run_trials(4, FIXED, lambda k: ran.append(k) or rounds[k])
    assert ran == [1, 2] and last is rounds[2]  # stops at the first that passes
    assert trials[0]["failed"] == ["p99 x1.8 > 1.5 (over by 0.300)"]
    assert trials[0]["throughput_vs_fixed"] == 0.95 and trials[0]["pool_full_after_s"] == 2
    pool = choose(4, trials, FIXED, _idle())
    assert pool["pool_min"] == 2 and pool["breathing_rounds"] == 2
    assert "a burst from 2 met both targets" in pool["pool_min_reason"]


def test_common_case_is_one_round_from_one():
    ran: list[int] = []
    trials, _ = run_trials(2, FIXED, lambda k: ran.append(k) or _round(k, 960.0, 5.9, 2))
    pool = choose(2, trials, FIXED, _idle())
    assert ran == [1] and pool["pool_min"] == 1 and pool["breathing_rounds"] == 1


def test_no_passing_start_falls_back_to_a_fixed_pool_and_says_why():
    trials, _ = run_trials(2, FIXED, lambda k: _round(k, 800.0, 4.4, 2))
    pool = choose(2, trials, FIXED, _idle())
    assert pool["pool_min"] == 2 == pool["pool_max"]
    assert pool["pool_min_reason"] == "fixed pool: from 1: throughput x0.8 < 0.9 (short by 0.100)"
    # a wide pool: three rounds at most, and the report names the starts never tried
    trials, _ = run_trials(6, FIXED, lambda k: _round(k, 900.0, 6.1, 6))
    pool = choose(6, trials, FIXED, _idle())
    assert [t["pool_min"] for t in trials] == candidates(6) == [1, 2, 3]
    assert pool["pool_min"] == 6 and "pool_min 4..5 not tried" in pool["pool_min_reason"]
    # a round that could not run: no larger start is tried, the pool is fixed
    trials, _ = run_trials(4, FIXED, lambda k: {"pool_min": k, "error": "the measuring "
                                                "process died (exit -11)"})
    pool = choose(4, trials, FIXED, _idle())
    assert len(trials) == 1 and pool["pool_min"] == 4 and "exit -11" in pool["pool_min_reason"]
    assert "not tried" not in pool["pool_min_reason"]


def test_idle_timeout_grows_with_creation_time_between_30_s_and_10_minutes():
    assert [idle_timeout(c)["pool_idle_s"] for c in (None, 0.07, 1.5, 2.5, 100.0)] == [
        30.0, 30.0, 30.0, 50.0, 600.0]
    assert "2.50 s to create" in idle_timeout(2.5)["reason"]
    assert idle_timeout(None)["creation_s"] is None


def test_served_settings_carry_the_chosen_pool():
    winner = Result(Setting(threads=2, pool_max=3))
    pool = choose(3, [judge(_round(1, 990.0, 5.0, 3), FIXED)], FIXED, idle_timeout(3.0))
    s = served_settings(winner, pool)
    assert (s.pool_min, s.pool_max, s.pool_idle_s, s.threads) == (1, 3, 60.0, 2)


@pytest.fixture(scope="module")
def repo(exported, tmp_path_factory):
    repo = tmp_path_factory.mktemp("tune-pool") / "repo"
    publish_copy(exported("demo:cnn", "pir", "1.0.0", 3), repo, "cnn", "1.0.0")
    return repo


def _serve_pool(repo, version="1.0.0") -> tuple[dict, tuple[int, int, float]]:
    """What serve does with REPO/cnn/serving.json: its loader's settings and the pool it made."""
    from paddlehot_cli.serve.runtime import ServeConfig, make_loader

    loaded = make_loader(ServeConfig(repo=repo))(repo / "cnn" / version)
    try:
        pool = loaded.servable.pool
        return loaded.settings, (pool.min_size, pool.max_size, pool.idle_s)
    finally:
        loaded.servable.close()


def test_tune_write_saves_pool_min_and_idle_and_serve_applies_them(repo, tmp_path):
    out = tmp_path / "tune.json"
    proc = cli("bench", f"{repo}:cnn", "--tune", "--threads", "1", "--pool-max", "2",
               "--batch-size", "1", "--onednn", "on", "--memory-optim", "off", "-d", "0.3",
               "-c", "2", "--write", "--json", out)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(out.read_text())
    pool, winner = doc["pool"], doc["winner"]
    measured = next(r for r in doc["results"] if r["label"] == winner["label"])
    creation = measured["load_s"] / measured["predictors"]
    assert pool["idle"]["creation_s"] == round(creation, 3) and creation > 0
    assert pool["pool_idle_s"] == idle_timeout(creation)["pool_idle_s"]
    rounds = pool["breathing_rounds"]
    assert rounds == len(pool["trials"]) == (0 if pool["pool_max"] == 1 else 1)
    assert f"pool_min {pool['pool_min']} (" in proc.stdout
    written = read_settings(repo / "cnn")
    assert written is not None and written.given() == winner["settings"]
    assert (written.pool_min, written.pool_max, written.pool_idle_s) == (
        pool["pool_min"], pool["pool_max"], pool["pool_idle_s"])
    settings, _ = _serve_pool(repo)
    assert {"pool_min", "pool_max", "pool_idle_s"} <= set(settings["from_serving_json"])
    # values off serve's defaults, so applying them is visible in the pool serve builds
    write_settings(repo / "cnn", ServingSettings(pool_min=2, pool_max=3, pool_idle_s=75.0))
    assert _serve_pool(repo)[1] == (2, 3, 75.0)
