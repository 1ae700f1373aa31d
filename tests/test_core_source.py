from __future__ import annotations

import os
import time

from paddlehot_cli.core.source import RepositorySource
from tests.serve_fixtures.helpers import copy_unpublished, publish_copy, wait_for


def test_scan_reports_only_complete_versions(exported, tmp_path):
    pkg = exported("demo:mlp")
    repo = tmp_path / "repo"
    publish_copy(pkg, repo, "mlp", "1.0.0")
    bad = copy_unpublished(pkg, repo / "mlp" / "1.1.0", "mlp", "1.1.0")
    (bad / "model.pdiparams").write_bytes(b"x")
    copy_unpublished(pkg, repo / "mlp" / ".1.2.0.tmp-x", "mlp", "1.2.0")
    copy_unpublished(pkg, repo / "mlp" / "not-semver", "mlp", "1.3.0")
    copy_unpublished(pkg, repo / "mlp" / "1.4.0", "other", "1.4.0")  # names another model
    seen, invalid = [], []
    src = RepositorySource(repo, lambda m, v, l: seen.append((m, sorted(v))),
                           lambda m, v, r: invalid.append(v))
    src.scan()
    assert seen == [("mlp", ["1.0.0"])]
    assert sorted(invalid) == ["1.1.0", "1.4.0"]
    src.scan()  # unchanged: nothing reported, nothing re-hashed
    assert len(seen) == 1 and len(invalid) == 2
    (bad / "model.pdiparams").write_bytes((pkg / "model.pdiparams").read_bytes())  # copy completes
    src.scan()
    assert seen[-1] == ("mlp", ["1.0.0", "1.1.0"])


def test_watch_and_poll_fallback(exported, tmp_path):
    pkg = exported("demo:mlp")
    for use_watchfiles in (True, False):
        repo = tmp_path / f"repo{use_watchfiles}"
        publish_copy(pkg, repo, "mlp", "1.0.0")
        seen = []
        src = RepositorySource(repo, lambda m, v, l: seen.append(sorted(v)), poll_interval=0.1,
                               use_watchfiles=use_watchfiles)
        src.scan()
        src.start()
        try:
            publish_copy(pkg, repo, "mlp", "1.0.1")
            wait_for(lambda: seen[-1] == ["1.0.0", "1.0.1"], 10, what="new version seen")
            os.rename(repo / "mlp" / "1.0.0", repo / "mlp" / ".gone")
            wait_for(lambda: seen[-1] == ["1.0.1"], 10, what="removal seen")
        finally:
            t0 = time.monotonic()
            src.stop()
            assert time.monotonic() - t0 < 3


def test_out_of_fds_never_looks_like_versions_deleted(exported, tmp_path, caplog):
    """The repository scan runs out of file descriptors for real (the process's own limit is
    lowered and exhausted): every version stays loaded, its labels stay, the index says why,
    one ERROR is logged, and everything recovers when fds are free again."""
    import json
    import logging
    import resource

    import httpx

    from tests.serve_fixtures.helpers import start_runtime

    pkg = exported("demo:mlp")
    repo = tmp_path / "repo"
    publish_copy(pkg, repo, "mlp", "1.0.0")
    publish_copy(pkg, repo, "mlp", "1.1.0")
    (repo / "mlp" / "labels.json").write_text(json.dumps({"labels": {"stable": "1.0.0"}}))
    rt = start_runtime(repo, use_watchfiles=False)
    caplog.set_level(logging.INFO, logger="paddlehot.source")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []
    try:
        assert rt.manager.loaded_versions("mlp") == ["1.1.0", "1.0.0"]
        assert rt.manager.labels("mlp").to_json()["labels"] == {"stable": "1.0.0"}
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 32, hard))
        try:
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass  # EMFILE: the table is full
        os.utime(repo / "mlp" / "1.0.0")  # a change the next poll must look at
        wait_for(lambda: rt.source.scan_error is not None, 10, what="a failed scan")
        time.sleep(1.0)  # several more polls while the table stays full
        assert rt.manager.loaded_versions("mlp") == ["1.1.0", "1.0.0"]
        assert rt.manager.labels("mlp").to_json()["labels"] == {"stable": "1.0.0"}
        rows = rt.manager.status()
        assert rows and all("Too many open files" in r["repository_error"] for r in rows), rows
        assert {r["version"]: r["state"] for r in rows} == {"1.1.0": "READY", "1.0.0": "READY"}
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        wait_for(lambda: rt.source.scan_error is None, 10, what="the scan to recover")
        rows = httpx.post(f"http://127.0.0.1:{rt.port}/v2/repository/index").json()
        assert not any("repository_error" in r for r in rows), rows
        assert rt.manager.loaded_versions("mlp") == ["1.1.0", "1.0.0"]
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "keeps serving" in errors[0].getMessage(), errors
        # a version removed now is really gone: only "missing" means deleted
        os.rename(repo / "mlp" / "1.1.0", repo / "mlp" / ".1.1.0.gone")
        wait_for(lambda: rt.manager.loaded_versions("mlp") == ["1.0.0"], 20, what="1.0.0 serving")
    finally:
        rt.stop_thread()


def _source(repo):
    seen, invalid = [], {}
    src = RepositorySource(repo, lambda m, v, l: seen.append((sorted(v), l)),
                           lambda m, v, r: invalid.__setitem__(v, r))
    return src, seen, invalid


def test_a_fifo_or_a_symlink_as_labels_never_blocks_or_leaks(exported, tmp_path):
    import threading

    pkg = exported("demo:mlp")
    repo = tmp_path / "repo"
    publish_copy(pkg, repo, "mlp", "1.0.0")
    os.mkfifo(repo / "mlp" / "labels.json")  # open() on it would block the scanner forever
    src, seen, _ = _source(repo)
    done = threading.Event()
    threading.Thread(target=lambda: (src.scan(), done.set()), daemon=True).start()
    assert done.wait(5), "the scan blocked on a FIFO"
    assert seen[-1] == (["1.0.0"], None)
    os.unlink(repo / "mlp" / "labels.json")
    secret = tmp_path / "outside.json"
    secret.write_text('{"labels": {"stable": "1.0.0"}}')
    os.symlink(secret, repo / "mlp" / "labels.json")  # leads out of REPO: not followed
    src.scan(force=True)
    assert seen[-1] == (["1.0.0"], None)
    os.unlink(repo / "mlp" / "labels.json")
    (repo / "mlp" / "labels.json").write_text(" " * (2 << 20))  # over the size cap
    src.scan(force=True)
    assert seen[-1] == (["1.0.0"], None)


def test_a_refused_version_is_retried_when_its_file_is_restored_as_it_was(exported, tmp_path):
    """cp -p puts back the same size and mtime: the inode and ctime still say it changed."""
    import shutil

    pkg = exported("demo:mlp")
    repo = tmp_path / "repo"
    vdir = publish_copy(pkg, repo, "mlp", "1.0.0")
    params = vdir / "model.pdiparams"
    saved = tmp_path / "saved.pdiparams"
    shutil.copy2(params, saved)
    st = params.stat()
    data = bytearray(params.read_bytes())
    data[0] ^= 0xFF  # same size, wrong bytes
    params.write_bytes(bytes(data))
    os.utime(params, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime too
    src, seen, invalid = _source(repo)
    src.scan()
    assert seen[-1][0] == [] and "sha256" in invalid["1.0.0"]
    os.unlink(params)
    shutil.copy2(saved, params)  # restored: the size and mtime it had
    src.scan()
    assert seen[-1][0] == ["1.0.0"] and invalid["1.0.0"] is None


def test_polling_ignores_unrelated_files_in_a_version_dir(exported, tmp_path, monkeypatch):
    from paddlehot_cli.core import source as source_module

    pkg = exported("demo:mlp")
    repo = tmp_path / "repo"
    vdir = publish_copy(pkg, repo, "mlp", "1.0.0")
    src, seen, _ = _source(repo)
    src.scan()
    junk = vdir / "junk"
    junk.mkdir()  # changes the version dir once: one re-check
    for i in range(2000):
        (vdir / f"unrelated-{i}").write_bytes(b"")
    src.scan()
    listed: list[str] = []
    real = os.scandir

    def counting(path="."):
        listed.append(str(path))
        return real(path)

    monkeypatch.setattr(source_module.os, "scandir", counting)
    for _ in range(3):
        src.scan()
    assert str(vdir) not in listed, listed  # its files are not listed again on every poll
    assert seen[-1][0] == ["1.0.0"]
    (vdir / "model.pdiparams").write_bytes(b"x")  # a listed file changes: seen at once
    src.scan()
    assert seen[-1][0] == []


def test_rows_of_deleted_versions_go(exported, tmp_path):
    import shutil

    from paddlehot_cli.core.manager import Manager, ManagerConfig
    from paddlehot_cli.core.status_rows import status_rows

    pkg = exported("demo:mlp")
    repo = tmp_path / "repo"
    publish_copy(pkg, repo, "mlp", "1.0.0")
    broken = publish_copy(pkg, repo, "mlp", "1.1.0")

    def loader(path):
        if path.name == "1.1.0":
            raise RuntimeError("does not load")
        from paddlehot_cli.core import load

        return load(path)

    mgr = Manager(loader, ManagerConfig())
    src = RepositorySource(repo, mgr.set_available, mgr.report_invalid)
    try:
        src.scan()
        mgr.wait_idle(60)
        assert {r["version"] for r in mgr.status()} == {"1.0.0", "1.1.0"}
        shutil.rmtree(broken)
        src.scan()
        mgr.wait_idle(60)
        assert [r["version"] for r in status_rows(mgr._models["mlp"])] == ["1.0.0"]
    finally:
        mgr.stop()
