"""Service-user deployment (issue 24 item 5): root publishes, an unprivileged user serves.

Versions are published readable by others under the usual umask (0755 dirs, 0644 files), a
stricter umask the operator set is kept, and a version serve may not read is reported as
"permission denied: PATH" in the index instead of "no complete version in the repository".
The end-to-end test installs paddlehot with pip into a directory another user can read and runs
`serve` as a freshly created system user, as templates/deploy/paddlehot-serve.service does.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, cli
from tests.serve_fixtures.helpers import (
    free_port,
    publish_copy,
    start_runtime,
    wait_for,
)
from tests.test_deploy_steps import pip_install

SERVICE_USER = "phtest-svc"


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode)
            for p in [root, *root.rglob("*")]}


def export_under_umask(repo: Path, umask: str) -> Path:
    """`paddlehot export demo:mlp --repo REPO` in a process started under UMASK."""
    proc = subprocess.run(["sh", "-c", f'umask {umask} && exec "$@"', "sh", sys.executable, "-m",
                           "paddlehot_cli", "export", "demo:mlp", "--repo", str(repo)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return repo


def test_export_publishes_readable_by_others_and_keeps_a_stricter_umask(tmp_path):
    repo = export_under_umask(tmp_path / "repo", "022")
    got = modes(repo / "mlp" / "1.0.0")
    assert got["."] == 0o755, got  # mkdtemp's 0700 was widened
    assert all(m in (0o644, 0o755) for m in got.values()), got
    strict = export_under_umask(tmp_path / "strict", "077")
    got = modes(strict / "mlp" / "1.0.0")
    assert all(m & 0o077 == 0 for m in got.values()), got  # never wider than the user asked


def test_publish_copy_and_settings_file_follow_the_umask(tmp_path, exported):
    from paddlehot_cli.core.publish import publish_copy as core_publish_copy
    from paddlehot_cli.core.serving_settings import ServingSettings, write_settings

    old = os.umask(0o022)
    try:
        final = core_publish_copy(exported("demo:mlp", "pir", "1.0.0", 3), tmp_path, "2.0.0")
        path = write_settings(final.parent, ServingSettings(threads=1))
    finally:
        os.umask(old)
    assert stat.S_IMODE(final.stat().st_mode) == 0o755
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_unreadable_version_is_reported_as_permission_denied(tmp_path, exported):
    if os.geteuid() == 0:
        pytest.skip("root reads every file; the service-user test below covers this as a user")
    repo = tmp_path / "repo"
    vdir = publish_copy(exported("demo:mlp", "pir", "1.0.0", 3), repo, "mlp", "1.0.0")
    vdir.chmod(0o300)
    rt = start_runtime(repo)
    try:
        rows = httpx.post(f"http://127.0.0.1:{rt.port}/v2/repository/index").json()
        assert rows[0]["reason"].startswith("permission denied: mlp/1.0.0"), rows
    finally:
        rt.stop_thread()
        vdir.chmod(0o755)


@pytest.fixture()
def service_user():
    if os.geteuid() != 0:
        pytest.skip("creating a system user needs root (CI runs as root)")
    if shutil.which("useradd") is None:
        pytest.skip("useradd is not installed")
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        SERVICE_USER], check=True)
    yield pwd.getpwnam(SERVICE_USER)
    subprocess.run(["userdel", SERVICE_USER], check=False)


def test_root_published_repository_served_by_an_unprivileged_user(service_user):
    # pytest's tmp_path is 0700 root: the box's layout needs a directory others may enter
    work = Path(tempfile.mkdtemp(prefix="paddlehot-svc-"))
    try:
        work.chmod(0o755)
        site, repo, home = work / "site", work / "repo", work / "home"
        pip_install(site, work)
        old = os.umask(0o022)  # the usual umask of a root shell
        try:
            proc = cli("export", "demo:mlp", "--repo", repo, "--version", "1.0.0")
        finally:
            os.umask(old)
        assert proc.returncode == 0, proc.stderr
        home.mkdir()
        os.chown(home, service_user.pw_uid, service_user.pw_gid)
        port = free_port()
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONPATH": str(site),
               "GLOG_minloglevel": "2"}
        state = work / "state"  # systemd's StateDirectory=: owned by User=
        state.mkdir(mode=0o700)
        os.chown(state, service_user.pw_uid, service_user.pw_gid)
        argv = as_user(service_user, work, [sys.executable, "-m", "paddlehot_cli",
                                            *unit_serve_args(repo, port, state)])
        server = subprocess.Popen(argv, env=env, cwd=home, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            base = f"http://127.0.0.1:{port}"

            def ready():
                if server.poll() is not None:
                    raise AssertionError(server.stdout.read())
                try:
                    return httpx.get(f"{base}/v2/models/mlp/ready").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, 120, 0.2, "the service user's serve to load mlp 1.0.0")
            meta = httpx.get(f"{base}/v2/models/mlp").json()
            shape = [1, *[d if d > 0 else 1 for d in meta["inputs"][0]["shape"][1:]]]
            body = {"inputs": [{"name": meta["inputs"][0]["name"], "datatype": "FP32",
                                "shape": shape, "data": [0.5] * _count(shape)}]}
            r = httpx.post(f"{base}/v2/models/mlp/infer", json=body)
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == "1.0.0"
            # a version root publishes 0700 by hand: the index says why, not "no version"
            denied = publish_copy(repo / "mlp" / "1.0.0", repo, "mlp", "1.1.0")
            denied.chmod(0o700)
            reason = wait_for(lambda: {r["version"]: r for r in httpx.post(
                f"{base}/v2/repository/index").json()}.get("1.1.0", {}).get("reason"), 30)
            assert reason.startswith("permission denied: mlp/1.1.0"), reason
            # a model directory root made under umask 077: the model's row says so too
            locked = publish_copy(repo / "mlp" / "1.0.0", repo, "locked", "1.0.0").parent
            locked.chmod(0o700)
            row = wait_for(lambda: next((r for r in httpx.post(f"{base}/v2/repository/index")
                                         .json() if r["name"] == "locked"), None), 30)
            assert row["reason"].startswith("permission denied: locked/"), row
        finally:
            server.terminate()
            out, _ = server.communicate(timeout=60)
        assert "permission denied: mlp/1.1.0" in out, out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def unit_serve_args(repo: Path, port: int, state: Path) -> list[str]:
    """The shipped unit's ExecStart arguments, with this test's repository, port and state dir
    (its flags are what a box runs: a flag serve does not know fails the test)."""
    text = (ROOT / "templates" / "deploy" / "paddlehot-serve.service").read_text()
    line = next(x for x in text.replace("\\\n", " ").splitlines() if x.startswith("ExecStart="))
    args = shlex.split(line.removeprefix("ExecStart="))
    assert args[0] == "/usr/local/bin/paddlehot" and args[1] == "serve", args
    assert "StateDirectory=paddlehot-state" in text  # systemd makes --state-dir for User=
    subst = {"/var/lib/paddlehot/models": str(repo), "8000": str(port),
             "/var/lib/paddlehot-state": str(state)}
    return [subst.get(a, a) for a in args[1:]]


def as_user(user: pwd.struct_passwd, work: Path, argv: list[str]) -> list[str]:
    """argv run as `user`. This interpreter may live in a home only root may enter (CI:
    /root/.pyenv): then it runs in its own mount namespace where that home is an empty 0755
    tmpfs with only the interpreter's tree bind-mounted back, as a box's /usr/local would be.
    Nothing else of the hidden home is visible to the service user."""
    drop = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    prefix = Path(sys.base_prefix).resolve()
    hidden = next((p for p in reversed(prefix.parents) if not p.stat().st_mode & 0o001), None)
    if hidden is None:
        return [*drop, *argv]
    keep = hidden / prefix.relative_to(hidden).parts[0]
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip(f"{sys.executable} is under {hidden} (mode 0700) and unshare -m is refused")
    stash = work / "interpreter"
    stash.mkdir()
    script = ('mount --bind "$1" "$2" && mount -t tmpfs -o mode=755 tmpfs "$3" && '
              'mkdir "$1" && mount --bind "$2" "$1" && shift 3 && exec "$@"')
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
            str(keep), str(stash), str(hidden), *drop, *argv]


def _count(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
