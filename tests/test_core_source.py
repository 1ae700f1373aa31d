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
