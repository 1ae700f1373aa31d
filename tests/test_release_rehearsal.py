"""Release rehearsal (issue 24 item 10): what a user does on fresh boxes, through the CLI only
(subprocesses of `python -m paddlehot_cli`), real files, a real registry (docker-registry on
127.0.0.1), real Paddle on x86_64 and under qemu on aarch64.

sign --new-key -> export v1, v2 --sign -> build-plugin x86_64 and aarch64 -> push v1 (x86_64),
then its aarch64 plugin added to the pushed version -> an x86_64 box and an aarch64 box (qemu)
follow `stable` with --trust (the x86_64 one with --state-dir) -> moving `stable` rolls both to
v2 -> unsigned, foreign-key and wrongly named versions are refused with their reason while v2
serves -> a version whose plugin aborts in open() kills the x86_64 box; restarted (as systemd
would) it quarantines it and serves v2 -> moving `stable` back to v1 is a rollback, logged and
counted. Clients send requests throughout: 0 failed on the versions that survive; requests to
the box the crash killed are counted apart.

Needs the aarch64 rootfs (native/edge/build-rootfs.sh; CI caches it). ~2.5 minutes on a shared
2-core box (two aarch64 builds verified under qemu and the qemu box's start are most of it).
"""

from __future__ import annotations

import re
import signal
import time

import httpx
import pytest
from conftest import cli

from paddlehot_cli.bench.fleet_rollout import Load
from tests.fleet_fixtures.boxes import Box, HostBox, QemuBox
from tests.fleet_fixtures.registry import running
from tests.serve_fixtures.helpers import metric, publish_built_plugin, wait_for
from tests.test_edge_e2e import rootfs  # noqa: F401 - the cached rootfs, paddlehot refreshed

pytestmark = [pytest.mark.registry, pytest.mark.qemu, pytest.mark.slow]

GOOD = ("1.0.0", "1.1.0")


@pytest.fixture
def registry(tmp_path):
    yield from running(tmp_path / "registry")


def ok(proc, *needles: str) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for needle in needles:
        assert needle in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.stdout


def refusal(box: Box, needle: str) -> dict | None:
    return next((r for r in box.rows() if needle in r.get("reason", "")), None)


def no_failures(results: list, where: str) -> None:
    failed = [r for r in results if r[1] != 200 or r[2] not in GOOD]
    assert not failed, f"{where}: {len(failed)} failed, e.g. {failed[:3]}"


def test_release_rehearsal(rootfs, registry, tmp_path):  # noqa: F811 - the imported fixture
    from tests.abi_fixtures.helpers import build_plugin

    t_start = time.monotonic()
    figures: dict[str, object] = {}
    url = registry.url("models/mlp")
    stable = registry.url("models/mlp:stable")
    keys, ci, build = tmp_path / "keys", tmp_path / "ci", tmp_path / "build"
    build.mkdir()
    key, pub = keys / "release.key", keys / "release.key.pub"

    # -- the release machine: a key, two signed versions, plugins for two architectures --------
    ok(cli("sign", "--new-key", key))
    ok(cli("sign", "--new-key", keys / "other.key"))
    for version, seed in zip(GOOD, (51, 52)):
        ok(cli("export", "demo:mlp", "--repo", ci, "--version", version, "--seed", seed,
               "--sign", key))
        ok(cli("build-plugin", ci / "mlp" / version, "-o", build / f"mlp-{version}-x86_64.so"),
           "verified")
    ok(cli("build-plugin", ci / "mlp/1.0.0", "-o", build / "mlp-1.0.0-aarch64.so", "--target",
           "aarch64", "--sysroot", rootfs, timeout=1200), "verified:")
    # v1 ships for x86_64 first; its aarch64 plugin joins the same version tag afterwards
    ok(cli("push", f"{ci}:mlp@1.0.0", url, "--insecure", "--plugin",
           build / "mlp-1.0.0-x86_64.so", "--sign", key, "--tag", "stable"))
    # the label named v1, so it follows v1's grown artifact (docs/fleet.md)
    ok(cli("push", f"{ci}:mlp@1.0.0", url, "--insecure", "--plugin",
           build / "mlp-1.0.0-aarch64.so", "--sign", key), "labels stable moved along")

    # -- two boxes follow `stable`, trusting only the release key ------------------------------
    follow = ["--follow", stable, "--insecure", "--follow-interval", "0.5", "--trust", pub,
              "--prefer", "plugin", "--poll-interval", "0.3"]
    (tmp_path / "box-x86").mkdir()
    (tmp_path / "box-arm").mkdir()
    x86 = HostBox("x86_64 box", tmp_path / "box-x86",
                  [*follow, "--state-dir", tmp_path / "state-x86"], tmp_path / "x86.log")
    arm = QemuBox("aarch64 box", rootfs, tmp_path / "box-arm", follow,
                  tmp_path / "arm.log")
    loads: list[tuple[str, Load]] = []
    try:
        x86.start()
        arm.start()
        # v2's aarch64 plugin builds (and verifies under qemu) while the aarch64 box starts
        ok(cli("build-plugin", ci / "mlp/1.1.0", "-o", build / "mlp-1.1.0-aarch64.so",
               "--target", "aarch64", "--sysroot", rootfs, timeout=1200), "verified:")
        wait_for(x86.ready, 120, 0.2, "the x86_64 box to serve v1")
        x86_load = Load(x86.port, clients=2)
        loads.append(("x86_64 box before the crash", x86_load))
        wait_for(arm.ready, 600, 1.0, "the aarch64 box under qemu to serve v1")
        arm_load = Load(arm.port, clients=1)
        loads.append(("aarch64 box", arm_load))
        wait_for(lambda: x86_load.first("1.0.0") and arm_load.first("1.0.0"), 120,
                 what="answers from v1 on both boxes")
        for box in (x86, arm):  # each serves the plugin of its own architecture
            meta = httpx.get(f"{box.base}/v2/models/mlp", timeout=30).json()
            assert meta["platform"] == "paddlehot_plugin", meta

        # -- v2: both architectures in one push, `stable` moves ---------------------------------
        pushed = time.time()  # the tag moves at the end of the push
        ok(cli("push", f"{ci}:mlp@1.1.0", url, "--insecure", "--plugin",
               build / "mlp-1.1.0-x86_64.so", "--plugin", build / "mlp-1.1.0-aarch64.so",
               "--sign", key, "--tag", "stable"))
        figures["push start -> first v2 answer, x86_64 box (s)"] = round(wait_for(
            lambda: x86_load.first_after("1.1.0", pushed), 60, what="v2 on x86_64") - pushed, 2)
        figures["push start -> first v2 answer, aarch64 box (s)"] = round(wait_for(
            lambda: arm_load.first_after("1.1.0", pushed), 300, what="v2 on aarch64") - pushed, 2)

        # -- bad versions: each moves `stable`, each is refused, v2 keeps serving --------------
        bad = {"1.2.0": ("--sign", keys / "other.key"), "1.3.0": ()}
        for version, sign in bad.items():
            ok(cli("export", "demo:mlp", "--repo", ci, "--version", version, "--seed", 53,
                   *sign))
        ok(cli("export", "demo:mlp", "--name", "victim", "--repo", ci, "--version", "1.4.0",
               "--seed", 54, "--sign", key))
        pushes = [(f"{ci}:mlp@1.2.0", "1.2.0", "unknown key"),
                  (f"{ci}:mlp@1.3.0", "1.3.0", "unsigned"),
                  (f"{ci}:victim@1.4.0", "", "named 'victim', not 'mlp'")]
        for source, version, reason in pushes:
            ok(cli("push", source, url, "--insecure", "--tag", "stable"))
            for box in (x86, arm):
                row = wait_for(lambda b=box, r=reason: refusal(b, r), 60,
                               what=f"{box.name} to refuse {source} ({reason})")
                assert row["state"] == "UNAVAILABLE" and row["version"] == version, row
                assert row["reason"].startswith("refused (tag stable)"), row
        time.sleep(1.0)
        assert x86_load.last_version() == arm_load.last_version() == "1.1.0"
        assert "refused mlp" in x86.text() and "refused mlp" in arm.text()
        assert sorted(p.name for p in (tmp_path / "box-x86/mlp").iterdir()
                      if not p.name.startswith(".")) == ["1.0.0", "1.1.0", "labels.json"]
        arm_results = arm_load.finish()
        assert arm.stop(timeout=120) == 0, arm.tail()

        # -- a version that aborts in open(): signed, pushed, `stable` moves to it -------------
        # what a Paddle abort in a version's load does: a plugin that calls abort() in open()
        publish_built_plugin(ci, "mlp", "1.5.0", build_plugin(name="mlp", version="1.5.0",
                                                              defines=("ABORT_IN_OPEN",)).parent)
        crash_pushed = time.time()
        ok(cli("push", f"{ci}:mlp@1.5.0", url, "--insecure", "--sign", key, "--tag", "stable"))
        x86.proc.wait(120)
        died = time.time()
        assert x86.proc.returncode == -signal.SIGABRT, (x86.proc.returncode, x86.tail())
        before_crash = x86_load.finish()
        # systemd restarts it: same command, same state dir, same port
        x86.start()
        wait_for(x86.ready, 120, 0.2, "the restarted x86_64 box")
        rows = {r["version"]: r for r in x86.rows() if r.get("version")}
        assert rows["1.5.0"]["reason"].startswith("quarantined: the server died while loading"), rows
        assert rows["1.1.0"]["state"] == "READY", rows
        after_load = Load(x86.port, clients=2)
        loads.append(("x86_64 box after the restart", after_load))
        wait_for(lambda: after_load.first("1.1.0"), 30, what="v2 served after the restart")

        # -- rollback: `stable` moves back to v1 -----------------------------------------------
        pushed = time.time()
        ok(cli("push", f"{ci}:mlp@1.0.0", url, "--insecure", "--tag", "stable"))
        figures["rollback: push start -> first v1 answer (s)"] = round(wait_for(
            lambda: after_load.first_after("1.0.0", pushed), 60, what="v1 after rollback")
            - pushed, 2)
        wait_for(lambda: after_load.last_version() == "1.0.0", 30, what="v1 only")
        text = x86.metrics()
        after = after_load.finish()
    finally:
        for _, load in loads:
            load.finish()
        for box in (x86, arm):
            if box.proc is not None:
                box.stop(timeout=120)

    assert x86.proc.returncode == 0, x86.tail()
    assert metric(text, "paddlehot_fleet_rollbacks_total", model="mlp", label="stable") == 1
    assert "rollback: label stable of mlp moved back 1.5.0 -> 1.0.0" in x86.text(), x86.tail()
    # surviving versions: every request answered, by a good version
    no_failures(arm_results, "aarch64 box")
    no_failures(after, "x86_64 box after the restart")
    no_failures([r for r in before_crash if r[0] < crash_pushed], "x86_64 box before the crash")
    crashed = [r for r in before_crash if r[0] >= crash_pushed and r[1] != 200]
    refused = [r for r in crashed if "ConnectError" in str(r[2])]  # sent after it died
    assert all(r[1] == 200 and r[2] in GOOD for r in before_crash if r[0] >= crash_pushed
               and r[1] == 200)  # no answer ever came from the aborting version
    assert {r[2] for r in arm_results} == set(GOOD)
    figures.update({
        "requests answered (all boxes)": sum(r[1] == 200 for _, lo in loads for r in lo.results),
        "failed on surviving versions": 0,
        "failed at the crash: in flight when it died": len(crashed) - len(refused),
        "failed at the crash: sent to the dead box (connection refused)": len(refused),
        **{f"{box.name} log: tag move seen -> serving (s)": re.findall(
            r"serving ([\d.]+) s after the tag move was seen", box.text()) for box in (x86, arm)},
        "crash: push start -> process died (s)": round(died - crash_pushed, 2),
        "rehearsal (s)": round(time.monotonic() - t_start, 1),
    })
    print("\nrelease rehearsal:", *(f"  {k}: {v}" for k, v in figures.items()), sep="\n")
