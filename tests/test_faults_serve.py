"""The fault suite: a real `paddlehot serve` on 127.0.0.1, 4 client threads running through
every fault, every failed request counted (status or transport error).

One server serves one model per case (the faults stay apart, the suite stays short); SIGTERM
gets its own server. Packages are real exports; the only injected fault is the 10 s load
(tests/serve_fixtures/fault_serve.py sleeps before the real loader). Each case asserts zero
failed requests to the healthy version and the metrics that show the fault was handled.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from paddlehot_cli.core.manifest import file_entry
from tests.conftest import ROOT, cli
from tests.serve_fixtures.clients import Clients
from tests.serve_fixtures.helpers import copy_unpublished, free_port, metric, publish_copy, wait_for

X2 = np.random.default_rng(7).standard_normal((2, 16)).astype("float32")
FIXTURE = Path(__file__).parent / "serve_fixtures" / "batch1_mlp.py"
COOLDOWN_S = 2.0


def body_of(x: np.ndarray) -> bytes:
    return json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                                   "data": x.ravel().tolist()}]}).encode()


BODY2, BODY1 = body_of(X2), body_of(X2[:1])


class Server:
    def __init__(self, repo: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = repo.parent / f"serve-{self.port}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        full_env = {**os.environ, "GLOG_minloglevel": "2", **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.serve_fixtures.fault_serve", "serve", str(repo),
             "--port", str(self.port), "--poll-interval", "0.2", "--breaker-failures", "3",
             "--breaker-cooldown", str(COOLDOWN_S), *args],
            cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._ready, 120, interval=0.2, what="the server to be ready")

    def _ready(self) -> bool:
        assert self.proc.poll() is None, self.output()
        try:
            return httpx.get(f"{self.base}/v2/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log_path.read_text()[-4000:]

    def metrics(self) -> str:
        return httpx.get(f"{self.base}/metrics").text

    def index(self) -> dict[tuple[str, str], dict]:
        rows = httpx.post(f"{self.base}/v2/repository/index").json()
        return {(r["name"], r["version"]): r for r in rows}

    def infer_url(self, model: str) -> str:
        return f"{self.base}/v2/models/{model}/infer"

    def serving(self, model: str) -> str | None:
        r = httpx.post(self.infer_url(model), content=BODY1)
        return r.json().get("model_version") if r.status_code == 200 else None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            self.log.close()


def _mount_small_tmpfs(path: Path) -> str | None:
    """Mount a 16 MB tmpfs at `path`; the reason it cannot be, or None."""
    path.mkdir(parents=True)
    if shutil.which("mount") is None:
        return "no mount(8)"
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    return None if proc.returncode == 0 else f"cannot mount a tmpfs here: {proc.stderr.strip()}"


@pytest.fixture(scope="module")
def packages(exported, tmp_path_factory):
    good = exported("demo:mlp", "pir", "1.0.0", 71)
    good2 = exported("demo:mlp", "pir", "1.0.0", 72)
    out = tmp_path_factory.mktemp("batch1")
    proc = cli("export", f"{FIXTURE}:Batch1MLP", "--input", "x:float32:[-1,16]", "--name", "flaky",
               "--version", "1.1.0", "--no-validate", "--dim-sizes", "1", "-o", out / "pkg")
    assert proc.returncode == 0, proc.stderr
    return good, good2, out / "pkg"


@pytest.fixture(scope="module")
def server(packages, tmp_path_factory):
    good, _, batch1 = packages
    base = tmp_path_factory.mktemp("faults")
    repo = base / "repo"
    no_tmpfs = _mount_small_tmpfs(repo)
    for model in ("killed", "broken", "slow", "flaky", "fulldisk"):
        publish_copy(good, repo, model, "1.0.0")
    srv = Server(repo, env={"PADDLEHOT_TEST_SLOW_LOAD": "slow/1.1.0=10"})
    srv.repo, srv.no_tmpfs = repo, no_tmpfs
    yield srv
    code = srv.stop()
    if no_tmpfs is None:
        subprocess.run(["umount", "-l", str(repo)], check=False)
    assert code == 0


def _report(name: str, clients: Clients) -> None:
    print(f"\nFAULT {name}: {clients.summary()}")


def _assert_healthy(srv: Server, clients: Clients, model: str, healthy: str) -> None:
    """No failed request at all, and the server's own count of errors on `healthy` is 0."""
    assert not clients.failed(), clients.failed()[:3]
    text = srv.metrics()
    assert metric(text, "paddlehot_requests_total", model=model, version=healthy, outcome="error") == 0
    assert metric(text, "paddlehot_requests_total", model=model, version=healthy, outcome="ok") > 0


def test_publisher_sigkilled_mid_copy(server, packages, tmp_path):
    good, good2, _ = packages
    mdir = server.repo / "killed"
    source = copy_unpublished(good2, tmp_path / "src", "killed", "1.0.0")
    with Clients(server.infer_url("killed"), lambda: BODY2) as clients:
        clients.wait_requests(20)
        # the product's atomic publisher (core.publish), killed after its first file
        script = ("import shutil, sys, time; from pathlib import Path\n"
                  "from paddlehot_cli.core import publish\n"
                  "real = shutil.copy2\n"
                  "def slow(a, b, **k):\n"
                  "    real(a, b, **k); print('copied', flush=True); time.sleep(60)\n"
                  "shutil.copy2 = slow\n"
                  "publish.publish_copy(Path(sys.argv[1]), Path(sys.argv[2]), '1.1.0')\n")
        atomic = subprocess.Popen([sys.executable, "-c", script, str(source), str(server.repo)],
                                  stdout=subprocess.PIPE, text=True, cwd=ROOT)
        # a naive publisher copying straight into the version dir, manifest first
        naive = subprocess.Popen([sys.executable, "-c", (
            "import shutil, sys, time; from pathlib import Path\n"
            "src, dst = Path(sys.argv[1]), Path(sys.argv[2]); dst.mkdir()\n"
            "m = src / 'paddlehot.json'; text = m.read_text().replace('\"mlp\"', '\"killed\"')\n"
            "(dst / m.name).write_text(text.replace('\"1.0.0\"', '\"1.2.0\"'))\n"
            "shutil.copy2(src / 'model.json', dst); print('copied', flush=True); time.sleep(60)\n"),
            str(good2), str(mdir / "1.2.0")], stdout=subprocess.PIPE, text=True)
        for p in (atomic, naive):
            assert p.stdout.readline().strip() == "copied"
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        wait_for(lambda: server.index().get(("killed", "1.2.0"), {}).get("state") == "UNAVAILABLE",
                 20, what="the partial 1.2.0 listed as UNAVAILABLE")
        assert any(p.name.startswith(".1.1.0.tmp-") for p in mdir.iterdir())  # left hidden
        clients.wait_requests(40)
    _report("publisher SIGKILLed mid-copy", clients)
    _assert_healthy(server, clients, "killed", "1.0.0")
    assert set(clients.by_version()) == {"1.0.0"}
    row = server.index()[("killed", "1.2.0")]
    assert "1.2.0" in row["reason"] and str(server.repo) not in row["reason"]
    assert metric(server.metrics(), "paddlehot_invalid_versions_total", model="killed", version="1.2.0") >= 1


def _republish_with(pkg: Path, dst: Path, model: str, version: str, change) -> None:
    """A version whose files pass their checksums but whose content is bad (`change(dir)`)."""
    tmp = copy_unpublished(pkg, dst.parent / f".{version}.tmp-test", model, version)
    changed = change(tmp)
    man = json.loads((tmp / "paddlehot.json").read_text())
    man["files"][changed] = file_entry(tmp / changed)
    (tmp / "paddlehot.json").write_text(json.dumps(man))
    os.rename(tmp, dst)


def test_load_failure_and_warmup_mismatch(server, packages):
    good = packages[0]
    mdir = server.repo / "broken"

    def garbage_params(d: Path) -> str:
        (d / "model.pdiparams").write_bytes(b"\0" * 64)
        return "model.pdiparams"

    def wrong_outputs(d: Path) -> str:
        with np.load(d / "validation.npz") as z:
            arrays = {k: z[k] for k in z.files}
        for k in arrays:
            if not k.startswith("input"):
                arrays[k] = arrays[k] + 1.0
        np.savez(d / "validation.npz", **arrays)
        return "validation.npz"

    with Clients(server.infer_url("broken"), lambda: BODY2) as clients:
        clients.wait_requests(20)
        _republish_with(good, mdir / "1.1.0", "broken", "1.1.0", garbage_params)
        wait_for(lambda: metric(server.metrics(), "paddlehot_load_failures_total",
                                model="broken", version="1.1.0") >= 1, 30, what="load failure")
        _republish_with(good, mdir / "1.2.0", "broken", "1.2.0", wrong_outputs)
        wait_for(lambda: metric(server.metrics(), "paddlehot_load_failures_total",
                                model="broken", version="1.2.0") >= 1, 30, what="warm-up mismatch")
        clients.wait_requests(20)
    _report("load failure + warm-up mismatch", clients)
    _assert_healthy(server, clients, "broken", "1.0.0")
    assert set(clients.by_version()) == {"1.0.0"}
    index = server.index()
    assert index[("broken", "1.1.0")]["state"] == "UNAVAILABLE"
    assert "differs" in index[("broken", "1.2.0")]["reason"], index[("broken", "1.2.0")]


def test_ten_second_load_serving_continues(server, packages):
    with Clients(server.infer_url("slow"), lambda: BODY2) as clients:
        clients.wait_requests(20)
        publish_copy(packages[1], server.repo, "slow", "1.1.0")
        wait_for(lambda: server.index().get(("slow", "1.1.0"), {}).get("state") == "LOADING",
                 10, what="1.1.0 loading")
        loading_since = time.monotonic()
        wait_for(lambda: server.serving("slow") == "1.1.0", 60, interval=0.1, what="1.1.0 serving")
        during = [o for o in clients.outcomes if o.sent >= loading_since and o.version == "1.0.0"]
        clients.wait_requests(20)
    _report("10 s load", clients)
    assert time.monotonic() - loading_since > 8  # the load really took ~10 s
    _assert_healthy(server, clients, "slow", "1.0.0")
    assert len(during) >= 20, len(during)  # 1.0.0 kept answering while 1.1.0 loaded
    assert clients.by_version().get("1.1.0", 0) > 0


def test_newest_fails_rollback_recovers_traffic_returns(server, packages):
    """1.1.0 is a real model with a real bug (hard-coded batch 1). Batch-2 traffic fails on it:
    the breaker opens, traffic rolls back to 1.0.0. Then the traffic turns batch-1 (the fault
    is gone): after the cooldown one trial reaches 1.1.0, succeeds, traffic returns to it."""
    shape = {"batch": BODY2}
    with Clients(server.infer_url("flaky"), lambda: shape["batch"]) as clients:
        clients.wait_requests(20)
        publish_copy(packages[2], server.repo, "flaky", "1.1.0")
        wait_for(lambda: metric(server.metrics(), "paddlehot_rollbacks_total", model="flaky") >= 1,
                 60, what="rollback")
        clients.wait_requests(40)  # rolled back: served by 1.0.0
        shape["batch"] = BODY1
        healed_at = time.monotonic()
        wait_for(lambda: metric(server.metrics(), "paddlehot_recoveries_total", model="flaky") >= 1,
                 COOLDOWN_S * 5, what="recovery")
        wait_for(lambda: any(o.version == "1.1.0" and o.sent > healed_at for o in clients.outcomes),
                 10, what="traffic back on 1.1.0")
        clients.wait_requests(20)
    _report("newest fails -> rollback -> recovers", clients)
    text = server.metrics()
    failed = clients.failed()
    assert failed and all("1.1.0" in o.error for o in failed), failed[:3]
    assert metric(text, "paddlehot_requests_total", model="flaky", version="1.0.0", outcome="error") == 0
    assert metric(text, "paddlehot_requests_total", model="flaky", version="1.1.0", outcome="error") == len(failed)
    assert metric(text, "paddlehot_rollbacks_total", model="flaky", version="1.1.0") == 1
    assert metric(text, "paddlehot_recoveries_total", model="flaky", version="1.1.0") == 1
    assert metric(text, "paddlehot_breaker_state", model="flaky", version="1.1.0") == 0
    # a bounded cost: the opening failures, then at most one trial per cooldown
    assert len(failed) <= 3 + 4 + int((healed_at - failed[0].sent) / COOLDOWN_S) + 1, len(failed)


def test_full_disk_during_publish(server, tmp_path):
    if server.no_tmpfs:
        pytest.skip(server.no_tmpfs)
    filler = server.repo / "filler"
    with Clients(server.infer_url("fulldisk"), lambda: BODY2) as clients:
        clients.wait_requests(20)
        with open(filler, "wb") as fh:  # fill the repository's file system
            try:
                while True:
                    fh.write(b"\0" * (1 << 20))
                    fh.flush()
            except OSError:
                pass
        proc = cli("export", "demo:mlp", "--name", "fulldisk", "--version", "1.1.0", "--seed", "3",
                   "--repo", server.repo)
        clients.wait_requests(20)
    filler.unlink()
    _report("full disk during publish", clients)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")], proc.stderr
    assert sorted(p.name for p in (server.repo / "fulldisk").iterdir()) == ["1.0.0"]
    _assert_healthy(server, clients, "fulldisk", "1.0.0")
    assert set(clients.by_version()) == {"1.0.0"}


def test_sigterm_mid_swap_exits_zero_and_answers_in_flight(packages, tmp_path):
    repo = tmp_path / "repo"
    publish_copy(packages[0], repo, "swap", "1.0.0")
    srv = Server(repo, env={"PADDLEHOT_TEST_SLOW_LOAD": "swap/1.1.0=10"})
    try:
        with Clients(srv.infer_url("swap"), lambda: BODY2) as clients:
            clients.wait_requests(20)
            publish_copy(packages[1], repo, "swap", "1.1.0")
            wait_for(lambda: srv.index().get(("swap", "1.1.0"), {}).get("state") == "LOADING",
                     10, what="1.1.0 loading")
            term_at = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            code = srv.proc.wait(60)
            exit_s = time.monotonic() - term_at
    finally:
        srv.stop()
    refused = sum(1 for o in clients.outcomes if o.sent >= term_at - 0.05 and o.status == -1)
    print(f"\nFAULT SIGTERM mid-swap: {clients.summary()}; {refused} of them sent after the signal "
          f"and refused (listener closed); exit {code} {exit_s:.1f} s after the signal (the 10 s "
          "load in progress finishes first)")
    assert code == 0, srv.output()
    before = [o for o in clients.outcomes if o.sent < term_at - 0.05]
    assert len(before) >= 20 and all(o.status == 200 for o in before), \
        [o for o in before if o.status != 200][:3]
    # in flight at the signal: answered (200); sent after it: refused (-1), never a 5xx
    assert all(o.status in (200, -1) for o in clients.outcomes), clients.summary()
    assert "drained and stopped" in srv.output()
