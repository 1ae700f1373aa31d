"""`serve --follow` against a real registry, under load: new versions arrive by themselves, an
unreachable registry changes nothing that is served, a tampered blob is refused visibly, and a
followed label rolls out and back."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
from conftest import assert_one_line_error

from paddlehot_cli.bench.fleet_rollout import Load
from paddlehot_cli.fleet import media
from paddlehot_cli.fleet.push import push_version
from paddlehot_cli.fleet.reference import parse_reference
from tests.fleet_fixtures.registry import publish_ci, running
from tests.serve_fixtures.helpers import metric, serve_argv, start_runtime, wait_for

INTERVAL = 0.5


@pytest.fixture
def registry(tmp_path):
    yield from running(tmp_path / "registry")


@pytest.fixture
def ci_repo(tmp_path, exported):
    return publish_ci(tmp_path / "ci", exported, ("1.0.0", "1.1.0", "1.2.0"))


def _index(rt) -> list[dict]:
    return httpx.post(f"http://127.0.0.1:{rt.port}/v2/repository/index", timeout=10).json()


def _metrics(rt) -> str:
    return httpx.get(f"http://127.0.0.1:{rt.port}/metrics", timeout=10).text


def _follow_state(rt) -> str | None:
    rows = [r for r in _index(rt) if r.get("follow")]
    return rows[0]["follow"][0]["state"] if rows else None


def _serve(box, url):
    return start_runtime(box, follow=[url], follow_interval=INTERVAL, insecure=True,
                         poll_interval=0.3)


def test_follow_serves_a_pushed_version_under_load(registry, ci_repo, tmp_path):
    ref = parse_reference(registry.url("models/mlp"))
    push_version(f"{ci_repo}:mlp@1.0.0", ref, insecure=True)
    box = tmp_path / "box"
    box.mkdir()
    rt = _serve(box, registry.url("models/mlp"))  # empty REPO: the first sync fills it
    load = Load(rt.port)
    try:
        wait_for(lambda: load.first("1.0.0"), 30, what="traffic on 1.0.0")
        pushed = push_version(f"{ci_repo}:mlp@1.1.0", ref, insecure=True)
        done = time.time()
        first = wait_for(lambda: load.first("1.1.0"), 60, what="the first answer from 1.1.0")
        time.sleep(0.5)
        results = load.finish()
        text = _metrics(rt)
    finally:
        load.finish()
        rt.stop_thread()
    failed = [r for r in results if r[1] != 200]
    assert not failed, failed[:5]
    push_to_first = first - (done - pushed.seconds)
    print(f"push of 1.1.0 took {pushed.seconds:.2f} s; push start -> first 1.1.0 answer "
          f"{push_to_first:.2f} s (interval {INTERVAL} s)")
    assert first - done < INTERVAL + 15  # interval + pull + load and warm-up on a shared box
    assert metric(text, "paddlehot_fleet_pulls_total", model="mlp") == 2
    assert metric(text, "paddlehot_fleet_tag_move_to_serve_seconds_count", model="mlp") == 1
    assert metric(text, "paddlehot_fleet_registry_up") == 1


def test_registry_down_keeps_serving_then_catches_up(registry, ci_repo, tmp_path):
    ref = parse_reference(registry.url("models/mlp"))
    push_version(f"{ci_repo}:mlp@1.0.0", ref, insecure=True)
    box = tmp_path / "box"
    box.mkdir()
    rt = _serve(box, registry.url("models/mlp"))
    load = Load(rt.port)
    try:
        registry.stop()
        wait_for(lambda: _follow_state(rt) == "unreachable", 20, what="the index to say unreachable")
        text = _metrics(rt)
        assert metric(text, "paddlehot_fleet_registry_up") == 0
        assert metric(text, "paddlehot_fleet_pull_failures_total", reason="unreachable") >= 1
        time.sleep(2 * INTERVAL)
        registry.start()  # same store, same port
        push_version(f"{ci_repo}:mlp@1.1.0", ref, insecure=True)
        wait_for(lambda: load.first("1.1.0"), 60, what="1.1.0 after the registry came back")
        assert _follow_state(rt) == "ok"
        results = load.finish()
    finally:
        load.finish()
        rt.stop_thread()
    assert {v for _, _, v in results} == {"1.0.0", "1.1.0"}
    assert all(code == 200 for _, code, _ in results), [r for r in results if r[1] != 200][:5]


def test_tampered_blob_is_refused_and_a_label_rolls_out_and_back(registry, ci_repo, tmp_path):
    ref = parse_reference(registry.url("models/mlp"))
    push_version(f"{ci_repo}:mlp@1.0.0", ref, tags=["stable"], insecure=True)
    box = tmp_path / "box"
    box.mkdir()
    rt = _serve(box, registry.url("models/mlp:stable"))
    load = Load(rt.port)
    try:
        wait_for(lambda: load.last_version() == "1.0.0", 30, what="1.0.0 via stable")
        # 1.1.0 reaches the registry, a blob of it gets corrupted, then `stable` moves to it
        push_version(f"{ci_repo}:mlp@1.1.0", ref, insecure=True)
        layers = registry.manifest("models/mlp", "1.1.0")["layers"]
        registry.tamper(next(x["digest"] for x in layers
                             if x["annotations"][media.TITLE] == "model.pdiparams"))
        push_version(f"{ci_repo}:mlp@1.1.0", ref, tags=["stable"], insecure=True)
        refused = wait_for(lambda: [r for r in _index(rt) if r["version"] == "1.1.0"], 30,
                           what="1.1.0 refused in the index")
        assert "digest mismatch" in refused[0]["reason"], refused
        assert metric(_metrics(rt), "paddlehot_fleet_pull_failures_total",
                      reason="digest_mismatch") == 1
        assert sorted(p.name for p in (box / "mlp").iterdir()) == ["1.0.0", "labels.json"]
        time.sleep(3 * INTERVAL)
        assert load.last_version() == "1.0.0"
        # roll out 1.2.0 by moving the label, then roll back by moving it back
        push_version(f"{ci_repo}:mlp@1.2.0", ref, tags=["stable"], insecure=True)
        wait_for(lambda: load.last_version() == "1.2.0", 60, what="1.2.0 via stable")
        push_version(f"{ci_repo}:mlp@1.0.0", ref, tags=["stable"], insecure=True)
        wait_for(lambda: load.last_version() == "1.0.0", 60, what="rollback to 1.0.0")
        text = _metrics(rt)
        results = load.finish()
    finally:
        load.finish()
        rt.stop_thread()
    assert all(code == 200 for _, code, _ in results), [r for r in results if r[1] != 200][:5]
    assert "1.1.0" not in {v for _, _, v in results}
    # the rollback by tag is counted, and each move timed from the tag change the box saw
    assert metric(text, "paddlehot_fleet_rollbacks_total", model="mlp", label="stable") == 1
    assert metric(text, "paddlehot_fleet_tag_move_to_serve_seconds_count", model="mlp") == 2


def test_an_empty_box_waits_for_an_unreachable_registry(registry, ci_repo, tmp_path):
    # a box that boots before its registry is reachable serves nothing (not ready) instead of
    # exiting, and takes the first version once the registry answers
    ref = parse_reference(registry.url("models/mlp"))
    registry.stop()
    box = tmp_path / "box"
    box.mkdir()
    rt = _serve(box, registry.url("models/mlp"))
    try:
        base = f"http://127.0.0.1:{rt.port}"
        assert httpx.get(f"{base}/v2/health/live", timeout=10).status_code == 200
        assert httpx.get(f"{base}/v2/health/ready", timeout=10).status_code == 503
        registry.start()
        push_version(f"{ci_repo}:mlp@1.0.0", ref, insecure=True)
        wait_for(lambda: httpx.get(f"{base}/v2/health/ready", timeout=10).status_code == 200, 60,
                 what="ready once the registry answered")
        r = httpx.post(f"{base}/v2/models/mlp/infer", timeout=10, json={"inputs": [
            {"name": "x", "datatype": "FP32", "shape": [1, 16], "data": [0.5] * 16}]})
        assert r.status_code == 200 and r.json()["model_version"] == "1.0.0", r.text
    finally:
        rt.stop_thread()


def test_serve_follow_refuses_bad_references(tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    for ref, needle in (("oci://127.0.0.1:5000/Models/mlp", "invalid repository path"),
                        ("oci://127.0.0.1:5000/models/mlp@^x", "invalid version range"),
                        ("oci://127.0.0.1:5000/models/mlp:1.2", "neither a SemVer version")):
        proc = subprocess.run(serve_argv(box, "--port", "0", "--follow", ref), capture_output=True,
                              text=True, timeout=60, check=False)
        assert_one_line_error(proc, 2, needle)


def test_follower_refuses_foreign_and_oversized_artifacts_visibly(registry, tmp_path, caplog):
    from prometheus_client import generate_latest

    from paddlehot_cli.fleet.follower import Follower

    registry.push_raw("models/mlp", "1.0.0", b"{}", "application/vnd.oci.image.config.v1+json")
    registry.push_raw("models/mlp", "1.1.0", b" " * (5 * 1024 * 1024), media.CONFIG)
    registry.push_raw("models/mlp", "latest", b"{}", media.CONFIG)  # not SemVer: never followed
    box = tmp_path / "box"
    box.mkdir()
    follower = Follower(box, [parse_reference(registry.url("models/mlp"))], interval=INTERVAL,
                        insecure=True, latest=2)
    try:
        follower.sync_once()
        follower.sync_once()  # a refusal is remembered, not logged and counted again
    finally:
        follower.stop()
    rows = {r["version"]: r for r in follower.index_rows([])}
    assert set(rows) == {"1.0.0", "1.1.0"}
    assert "is not a paddlehot package" in rows["1.0.0"]["reason"]
    assert "more than the" in rows["1.1.0"]["reason"]
    assert rows["1.0.0"]["follow"][0]["state"] == "ok"
    text = generate_latest(follower.metrics.registry).decode()
    assert metric(text, "paddlehot_fleet_pull_failures_total", reason="not_paddlehot") == 1
    assert metric(text, "paddlehot_fleet_pull_failures_total", reason="too_large") == 1
    assert [r.levelname for r in caplog.records if "refused" in r.getMessage()] == ["WARNING"] * 2
    assert list(box.rglob("*")) == []  # refused before anything was staged
