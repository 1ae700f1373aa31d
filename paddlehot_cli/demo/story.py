"""The demo story: export two versions, load them, infer, and summarise."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from paddlehot_cli.cli.render import console, out, step


def run_story(keep: bool = False) -> None:
    from rich.table import Table

    from paddlehot_cli.core import load
    from paddlehot_cli.export.pipeline import ExportRequest, export_package

    start = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="paddlehot-demo-"))
    repo = workdir / "repo"
    console.print(f"[bold]paddlehot demo[/bold] in {workdir}")
    try:
        results = []
        for version, seed in (("1.0.0", 0), ("1.1.0", 1)):
            console.rule(f"export demo:mlp {version}")
            req = ExportRequest(source="demo:mlp", name="mlp", version=version, repo=repo, seed=seed)
            results.append(export_package(req, step=step))
        console.rule("load and infer")
        x = np.random.default_rng(7).standard_normal((2, 16)).astype("float32")
        outputs = {}
        for result in results:
            with step(f"Loading {result.path.relative_to(workdir)} (checksums verified)"):
                servable = load(result.path)
            with servable:
                outputs[result.manifest["version"]] = next(iter(servable.infer({"x": x}).values()))
        table = Table(title="paddlehot demo", title_justify="left")
        for col in ("version", "validation", "max abs err", "output[0]"):
            table.add_column(col)
        for result in results:
            m = result.manifest
            v = m["validation"]
            table.add_row(
                m["version"], f"passed ({v['cases']} cases)" if v["passed"] else "FAILED",
                f"{v['max_abs_err']:.1e}",
                np.array2string(outputs[m["version"]][0], precision=3),
            )
        out.print(table)
        differ = not np.allclose(outputs["1.0.0"], outputs["1.1.0"])
        out.print(
            f"versions 1.0.0 and 1.1.0 {'compute different outputs' if differ else 'AGREE'}"
            f" (different weights); done in {time.perf_counter() - start:.1f} s"
        )
    finally:
        if keep:
            console.print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
