"""aarch64 for real, end to end under qemu: export on x86_64 -> build-plugin --target aarch64
--sysroot (cross pdcapi, verified inside the rootfs) -> abi-check --runtime ROOTFS -> `paddlehot
serve` inside the rootfs -> tritonclient from the host -> hot swap under 2 clients, 0 failures.

Needs the rootfs of native/edge/build-rootfs.sh (root, debootstrap, qemu-user-static). Without
one the module is skipped and says how to build it, unless PADDLEHOT_EDGE_REQUIRED=1 (CI), where
a missing rootfs is a failure. Slow by nature (emulated paddle): a few minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from paddlehot_cli.core import load
from paddlehot_cli.core.plugin_loader import machine
from paddlehot_cli.core.validation_data import load_cases
from tests.conftest import ROOT, assert_one_line_error, cli
from tests.serve_fixtures.helpers import free_port, wait_for

SCRIPT = ROOT / "native" / "edge" / "build-rootfs.sh"
X = np.random.default_rng(7).standard_normal((3, 16)).astype("float32")


@pytest.fixture(scope="module")
def rootfs() -> Path:
    """The cached rootfs, with this checkout's paddlehot installed in its venv."""
    check = subprocess.run([SCRIPT, "--check"], capture_output=True, text=True, check=False)
    why = None
    if check.returncode != 0:
        why = f"no aarch64 rootfs ({check.stderr.strip()}): build it with `{SCRIPT}` (as root, or through sudo)"
    elif os.geteuid() != 0:
        why = "refreshing paddlehot inside the rootfs needs root"
    if why:
        if os.environ.get("PADDLEHOT_EDGE_REQUIRED") == "1":
            pytest.fail(why)
        pytest.skip(why)
    proc = subprocess.run([SCRIPT, "--print-path", "--project", ROOT], capture_output=True,
                          text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def publish_hidden(repo: Path, version: str, seed: int, rootfs: Path) -> Path:
    """Export + cross-build + verify one version in a hidden dir (serve ignores it)."""
    hidden = repo / "mlp" / f".{version}.building"
    proc = cli("export", "demo:mlp", "--version", version, "--seed", seed, "-o", hidden)
    assert proc.returncode == 0, proc.stderr
    proc = cli("build-plugin", hidden, "-o", hidden / "plugin.so", "--target", "aarch64",
               "--sysroot", rootfs, timeout=1200)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "c_api=pdcapi" in proc.stdout and "aarch64" in proc.stdout, proc.stdout
    assert "verified:" in proc.stdout, proc.stdout  # ran under qemu, not skipped
    assert machine(hidden / "plugin.so") == "aarch64"
    return hidden


def expected_of(package: Path) -> np.ndarray:
    with load(package) as s:  # x86_64, this host's Paddle
        return next(iter(s.infer({"x": X}).values()))


def infer(client, version: str | None = None):
    import tritonclient.http as triton

    inp = triton.InferInput("x", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=True)
    res = client.infer("mlp", [inp], model_version=version or "")
    return res.get_response()["model_version"], res.as_numpy("logits")


def test_aarch64_end_to_end_under_qemu(rootfs, tmp_path):
    import tritonclient.http as triton

    repo = tmp_path / "repo"
    v1 = publish_hidden(repo, "1.0.0", 41, rootfs)
    v1 = v1.rename(repo / "mlp" / "1.0.0")
    v2 = publish_hidden(repo, "1.1.0", 42, rootfs)
    want = {"1.0.0": expected_of(v1), "1.1.0": expected_of(v2)}
    assert not np.allclose(want["1.0.0"], want["1.1.0"], atol=1e-3)

    # abi-check resolves every import in the rootfs: libc there, PD_* in the cross pdcapi.
    report = tmp_path / "abi.json"
    proc = cli("abi-check", v1 / "plugin.so", "--arch", "aarch64", "--runtime", rootfs,
               "--format", "json", "-o", report)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(report.read_text())
    by_id = {f["id"]: f for f in doc["findings"]}
    assert by_id["PH120"]["status"] == "pass" and by_id["PH121"]["status"] == "pass"
    assert doc["runtime"]["c_api_from_headers"] is False
    libs = doc["runtime"]["libraries"]
    assert "/pdcapi/aarch64-" in libs["libpaddle_inference_c.so"], libs  # the cross pdcapi
    assert by_id["PH124"]["status"] == "pass", by_id["PH124"]  # its C++ imports in the rootfs
    assert libs["libc.so.6"].startswith(str(rootfs)), libs
    # Exported by this host's Paddle (3.3.x), run by the rootfs' 3.2.2: a warning, not an error.
    skew = by_id["PH123"]
    assert skew["status"] == "fail" and skew["severity"] == "warning", skew
    assert "3.2.2" in skew["message"], skew

    from paddlehot_cli.plugin import qemu_serve
    from paddlehot_cli.plugin.rootfs import open_rootfs

    port = free_port()
    log = (tmp_path / "serve.log").open("a+")  # O_APPEND: reading never moves serve's writes
    proc = qemu_serve.start(open_rootfs(rootfs, "aarch64"), repo,
                            ["--port", str(port), "--prefer", "plugin", "--poll-interval", "0.5",
                             "--pool-max", "2"], stdout=log, stderr=subprocess.STDOUT)
    url = f"127.0.0.1:{port}"
    try:
        client = triton.InferenceServerClient(url, network_timeout=120)

        def ready() -> bool:
            assert proc.poll() is None, "serve under qemu exited: " + _tail(log)
            try:
                return client.is_model_ready("mlp", "1.0.0")
            except Exception:  # noqa: BLE001 - not listening yet
                return False

        wait_for(ready, timeout=600, interval=1.0, what="serve under qemu to be ready")
        assert client.get_model_metadata("mlp")["platform"] == "paddlehot_plugin"
        version, got = infer(client)
        assert version == "1.0.0"
        np.testing.assert_allclose(got, want["1.0.0"], rtol=1e-4, atol=1e-5)

        failures: list[str] = []
        seen: dict[str, int] = {}
        stop = threading.Event()
        lock = threading.Lock()

        def hammer() -> None:
            c = triton.InferenceServerClient(url, network_timeout=120)
            while not stop.is_set():
                try:
                    v, out = infer(c)
                    ok = np.allclose(out, want[v], rtol=1e-4, atol=1e-5)
                    with lock:
                        seen[v] = seen.get(v, 0) + 1
                        if not ok:
                            failures.append(f"{v}: wrong outputs")
                except Exception as exc:  # noqa: BLE001 - any failed request counts
                    with lock:
                        failures.append(repr(exc))

        clients = [threading.Thread(target=hammer, name=f"edge-client-{i}") for i in range(2)]
        for t in clients:
            t.start()
        try:
            wait_for(lambda: seen.get("1.0.0", 0) >= 4, timeout=120, interval=0.2,
                     what="traffic on 1.0.0")
            v2.rename(repo / "mlp" / "1.1.0")  # the publish: one rename
            wait_for(lambda: seen.get("1.1.0", 0) >= 10, timeout=600, interval=0.5,
                     what="traffic on 1.1.0 after the swap")
        finally:
            stop.set()
            for t in clients:
                t.join(timeout=180)
        assert failures == [], failures[:5]
        assert seen["1.0.0"] >= 4 and seen["1.1.0"] >= 10, seen
    finally:
        code = qemu_serve.stop(proc, timeout=120)
    text = _tail(log, lines=10_000)
    assert code == 0, text[-3000:]
    assert "exported with Paddle" in text and "runs on Paddle 3.2.2" in text, text[-3000:]


def test_cross_verification_failure_writes_nothing(rootfs, exported, tmp_path):
    """Recorded outputs that the aarch64 plugin does not reproduce: exit 1, one error line, no
    file at -o, exactly as a failed verification on the host."""
    pkg = tmp_path / "pkg"
    shutil.copytree(exported("demo:mlp", "pir", "1.0.0", 43), pkg)
    cases = load_cases(pkg)
    arrays = {}
    for i, (inputs, outputs) in enumerate(cases):
        arrays.update({f"case{i}:in:{k}": v for k, v in inputs.items()})
        arrays.update({f"case{i}:out:{k}": v + 1.0 for k, v in outputs.items()})
    with open(pkg / "validation.npz", "wb") as fh:
        np.savez(fh, **arrays)
    _refresh_checksum(pkg, "validation.npz")
    out = tmp_path / "arm.so"
    proc = cli("build-plugin", pkg, "-o", out, "--target", "aarch64", "--sysroot", rootfs,
               timeout=1200)
    assert_one_line_error(proc, 1, "differs from the recorded output", "under qemu")
    assert not out.exists() and not list(tmp_path.glob(".arm*"))


def _refresh_checksum(pkg: Path, name: str) -> None:
    import hashlib

    manifest = json.loads((pkg / "paddlehot.json").read_text())
    data = (pkg / name).read_bytes()
    manifest["files"][name].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (pkg / "paddlehot.json").write_text(json.dumps(manifest, indent=2))


def _tail(fh, lines: int = 30) -> str:
    fh.flush()
    fh.seek(0)
    return "\n".join(fh.read().splitlines()[-lines:])
