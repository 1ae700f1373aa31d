"""A plain `paddlehot bench` run from its checked plan: open the target(s), the swapper for
--swap-every, the trivial endpoint for --calibrate; measure (interleaved for --compare); close
everything; return the reports and the JSON document."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from paddlehot_cli.bench.request import RunPlan
from paddlehot_cli.bench.runner import (
    BenchReport,
    Progress,
    compare_ratios,
    run_bench,
    run_compare,
)


@dataclass
class Outcome:
    reports: list[BenchReport]  # one, or A and B for --compare
    ratios: list[dict] = field(default_factory=list)  # B relative to A, per concurrency

    def to_json(self) -> dict[str, Any]:
        data = self.reports[0].to_json()
        if len(self.reports) == 1:
            return data
        return {"schema": data["schema"], "compare": {
            "a": data, "b": self.reports[1].to_json(),
            "ratios": [{k: v for k, v in r.items() if k not in ("a", "b")} for r in self.ratios]}}


def run(plan: RunPlan, progress: Progress) -> Outcome:
    from paddlehot_cli.bench.swapper import swapper_for
    from paddlehot_cli.bench.targets import open_target
    from paddlehot_cli.bench.trivial_server import trivial_endpoint

    pool = max(plan.cfg.concurrency)
    with ExitStack() as stack:
        spec = plan.target or stack.enter_context(trivial_endpoint())
        a = open_target(spec, threads=plan.threads, pool_max=pool, timeout=plan.timeout,
                        pid=plan.pid)
        stack.callback(a.close)
        if plan.compare:
            b = open_target(plan.compare, threads=plan.threads, pool_max=pool,
                            timeout=plan.timeout)
            stack.callback(b.close)
            ra, rb = run_compare(a, b, plan.cfg, progress=progress)
            return Outcome([ra, rb], compare_ratios(ra, rb))
        swapper = swapper_for(a, plan.swap_repo) if plan.cfg.swap_every else None
        return Outcome([run_bench(a, plan.cfg, progress=progress, swapper=swapper)])
