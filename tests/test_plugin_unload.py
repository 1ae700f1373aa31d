"""Released plugins leave the process: six plugin versions published one after another through
the core Manager (as serve swaps them); afterwards only the serving version's plugin is mapped,
no model file of any version is mapped, and the open file descriptors did not grow."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from paddlehot_cli.core.elf_facts import read_elf
from paddlehot_cli.core.manager import Manager, ManagerConfig
from paddlehot_cli.core.plugin_loader import load_published_plugin
from paddlehot_cli.core.version_policy import VersionPolicy
from paddlehot_cli.plugin.build import BuildRequest, build_plugin
from paddlehot_cli.plugin.pdcapi import build_pdcapi
from tests.serve_fixtures.helpers import publish_copy

VERSIONS = [f"1.0.{i}" for i in range(6)]
MODEL = "leakcheck"  # a name of its own: plugins other tests keep in this process do not count


def _plugin_mappings() -> set[str]:
    """Distinct mapped files that are this test's plugins: a released one must not be there."""
    names = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and MODEL in parts[5] and "plugin" in parts[5]:
            names.add(parts[5])
    return names


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _publish(pkg: Path, repo: Path, version: str) -> Path:
    """A version with its plugin, built before the rename (as README's publish recipe)."""
    staging = publish_copy(pkg, repo / ".staging", MODEL, version)
    build_plugin(BuildRequest(package=staging, out=staging / "plugin.so", verify=False))
    final = repo / MODEL / version
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, final)
    return final


def test_released_plugins_leave_the_process(exported, tmp_path):
    pkg = exported("demo:mlp", "pir", "1.0.0", 7)
    repo = tmp_path / "repo"
    manager = Manager(
        lambda p: load_published_plugin(p, c_api=build_pdcapi),
        ManagerConfig(policy=VersionPolicy(latest=1, keep_previous=False), pool_max=1),
    )
    x = np.random.default_rng(0).random((2, 16)).astype("float32")
    available: dict[str, Path] = {}
    fds_after_first_swap = None
    try:
        for i, version in enumerate(VERSIONS):
            available[version] = _publish(pkg, repo, version)
            manager.set_available(MODEL, dict(available))
            assert manager.wait_idle(120)
            assert manager.loaded_versions(MODEL) == [version]
            servable = manager.servable(MODEL)
            assert servable.kind == "plugin"
            servable.infer({"x": x})
            if i == 1:
                fds_after_first_swap = _fds()
        mapped = _plugin_mappings()
        assert len(mapped) == 1, mapped  # the serving version only
        assert all(VERSIONS[-1] in m for m in mapped), mapped
        maps = Path("/proc/self/maps").read_text()
        assert not re.search(r"model\.(json|pdiparams)", maps)
        assert _fds() <= fds_after_first_swap
    finally:
        manager.stop()
    assert not _plugin_mappings()  # stop releases the last one too
    facts = read_elf(available[VERSIONS[0]] / "plugin.so")  # nothing in the file pins it
    assert not facts.dt_flags_1 & 0x8  # DF_1_NODELETE
    assert not any(s.bind_name == "STB_GNU_UNIQUE" for s in facts.symbols)
