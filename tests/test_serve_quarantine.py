"""A version that kills the process while loading cannot crash-loop a box (issue 24 item 6).

A real plugin whose open() calls abort() (compiled with gcc from tests/abi_fixtures/plugin.c)
is published as mlp 1.1.0 beside a real package 1.0.0. `serve --prefer plugin --state-dir`
dies loading it, as a Paddle abort would; restarted, it serves 1.0.0 and reports 1.1.0 as
quarantined (index, metadata). The quarantine survives a clean restart, an admin load lifts it
(and the server dies again: it really retried), and a republished 1.1.0 is served.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from paddlehot_cli.core.quarantine import LOADING_FILE, MAX_ENTRIES, QUARANTINE_FILE, Quarantine
from tests.abi_fixtures.helpers import build_plugin, stub_dir
from tests.serve_fixtures.helpers import (
    free_port,
    publish_built_plugin,
    publish_copy,
    serve_argv,
    wait_for,
)


def publish_aborting(repo: Path, version: str) -> Path:
    built = build_plugin(name="mlp", version=version, defines=("ABORT_IN_OPEN",)).parent
    return publish_built_plugin(repo, "mlp", version, built)


class Server:
    def __init__(self, repo: Path, state: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # the abi fixtures' libpaddle_inference_c.so satisfies the plugin's NEEDED entry
        env = dict(os.environ, GLOG_minloglevel="2", LD_LIBRARY_PATH=str(stub_dir()))
        self.proc = subprocess.Popen(
            serve_argv(repo, "--port", str(self.port), "--prefer", "plugin", "--state-dir",
                       state, "--poll-interval", "0.2"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(self.proc.stdout.read())
        try:
            return httpx.get(f"{self.base}/v2/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def died(self, timeout: float = 120) -> str:
        self.proc.wait(timeout)
        assert self.proc.returncode == -signal.SIGABRT, self.proc.returncode
        return self.proc.stdout.read()

    def rows(self) -> dict[str, dict]:
        return {r["version"]: r for r in httpx.post(f"{self.base}/v2/repository/index").json()}

    def stop(self) -> str:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=60)
        return out


@pytest.fixture()
def repo_and_state(tmp_path, exported):
    repo, state = tmp_path / "repo", tmp_path / "state"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 5), repo, "mlp", "1.0.0")
    publish_aborting(repo, "1.1.0")
    return repo, state


def test_a_version_that_aborts_in_open_is_quarantined_after_the_restart(repo_and_state, exported):
    repo, state = repo_and_state
    first = Server(repo, state)
    first.died()  # abort() in open: the whole process goes, as with a Paddle abort
    record = json.loads((state / LOADING_FILE).read_text())
    assert (record["model"], record["version"]) == ("mlp", "1.1.0"), record

    second = Server(repo, state)
    try:
        wait_for(second.ready, 120, 0.2, "the restarted server")
        rows = second.rows()
        assert rows["1.0.0"]["state"] == "READY", rows
        assert rows["1.1.0"]["state"] == "UNAVAILABLE", rows
        assert rows["1.1.0"]["reason"].startswith("quarantined: the server died while loading"), rows
        meta = httpx.get(f"{second.base}/v2/models/mlp").json()
        assert meta["parameters"]["version"] == "1.0.0"
        assert "1.1.0" in meta["parameters"]["quarantined"], meta
        assert not (state / LOADING_FILE).exists()
    finally:
        out = second.stop()
    assert "quarantined" in out

    third = Server(repo, state)  # a clean restart keeps the quarantine (it is on disk)
    wait_for(third.ready, 120, 0.2, "the third server")
    assert third.rows()["1.1.0"]["reason"].startswith("quarantined:")
    # an admin load lifts it: the server retries 1.1.0 and dies again, then quarantines again
    try:
        httpx.post(f"{third.base}/v2/repository/models/mlp/load", timeout=60)
    except httpx.HTTPError:
        pass  # the process died answering
    third.died()
    fourth = Server(repo, state)
    try:
        wait_for(fourth.ready, 120, 0.2, "the fourth server")
        assert fourth.rows()["1.1.0"]["reason"].startswith("quarantined:")
        # republishing 1.1.0 (a fixed build: its files change) lifts the quarantine
        shutil.rmtree(repo / "mlp" / "1.1.0")
        publish_copy(exported("demo:mlp", "pir", "1.0.0", 6), repo, "mlp", "1.1.0")
        wait_for(lambda: fourth.rows().get("1.1.0", {}).get("state") == "READY", 60, 0.2,
                 "the republished 1.1.0 to serve")
        assert httpx.get(f"{fourth.base}/v2/models/mlp").json()["parameters"]["quarantined"] == {}
    finally:
        fourth.stop()
    assert json.loads((state / QUARANTINE_FILE).read_text()) == {}


def test_quarantine_file_is_bounded_and_a_damaged_one_is_ignored(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    for i in range(MAX_ENTRIES + 10):  # each start after a crash adds one
        vdir = tmp_path / "repo" / "m" / f"1.0.{i}"
        vdir.mkdir(parents=True)
        (state / LOADING_FILE).write_text(json.dumps(
            {"model": "m", "version": f"1.0.{i}", "path": str(vdir), "pid": 1, "at": i}))
        q = Quarantine(state, lambda p: str(p))
    assert len(q.entries["m"]) == MAX_ENTRIES
    assert "1.0.0" not in q.entries["m"] and f"1.0.{MAX_ENTRIES + 9}" in q.entries["m"]
    assert len(json.loads((state / QUARANTINE_FILE).read_text())["m"]) == MAX_ENTRIES
    (state / QUARANTINE_FILE).write_text('{"m": {"1.0.0": ')  # torn by hand
    (state / LOADING_FILE).write_text("\0" * 10)
    q = Quarantine(state, lambda p: str(p))
    assert q.entries == {} and not (state / LOADING_FILE).exists()
    leftovers = [p.name for p in state.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temp file of a durable write stays behind


def test_odd_state_files_and_an_unwritable_state_dir_never_stop_a_load(tmp_path, caplog):
    state = tmp_path / "state"
    state.mkdir()
    (state / QUARANTINE_FILE).write_text(json.dumps(
        {"m": {"1.0.0": {"reason": "quarantined: x", "at": "yesterday"}}, "n": 3}))
    (state / LOADING_FILE).write_text(json.dumps(
        {"model": "m", "version": "1.1.0", "path": str(tmp_path), "at": [1]}))
    q = Quarantine(state, lambda p: str(p))
    assert set(q.entries["m"]) == {"1.0.0", "1.1.0"}
    shutil.rmtree(state)  # the state dir vanished (or the disk is full): loads go on
    q.begin("m", "1.2.0", tmp_path)
    q.end()
    q.lift("m")
    assert q.entries == {}
    assert "a crash in it would not be quarantined" in caplog.text
