"""The Manager's settings: policies, default batching (the names every config uses), warm-up,
draining, load priority."""

from __future__ import annotations

from dataclasses import dataclass, field

from paddlehot_cli.core.load_harness import HarnessConfig
from paddlehot_cli.core.loaded import Batching
from paddlehot_cli.core.policies import AvailabilityPreservingPolicy, ResourcePreservingPolicy
from paddlehot_cli.core.version_policy import VersionPolicy


@dataclass
class ManagerConfig:
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    resource_preserving: bool = False
    # a version's batching when its loader says nothing (serve flags, serving.json: same names)
    batch_size: int = 1
    batch_delay_ms: float = 0.0
    pool_max: int = 1
    # requests waiting per version beyond those running (0: 32 per worker and batch slot)
    max_queue: int = 0
    warmup: bool = True
    warmup_cases: int = 1  # validation cases run at warm-up, smallest first (0 = all)
    # unload versions that the new one pushes out of the aspired set before loading it, so at
    # most one version more than steady state is alive (never the last healthy one)
    retire_before_load: bool = True
    warmup_atol: float = 1e-4
    warmup_rtol: float = 1e-3
    breaker: dict = field(default_factory=dict)  # Breaker keyword arguments
    drain_timeout_s: float = 30.0
    # loads and pool growth (the pool keeper) run at a lower CPU priority than serving (Linux,
    # per thread)
    load_nice: int = 10
    # the CPU of serve's event loop: workers of GIL-bound versions run there too (cpu_affinity.py)
    gil_cpu: int | None = None

    def swap_policy(self) -> AvailabilityPreservingPolicy | ResourcePreservingPolicy:
        if self.resource_preserving:
            return ResourcePreservingPolicy()
        return AvailabilityPreservingPolicy(unload_leaving_first=self.retire_before_load)

    def harness(self) -> HarnessConfig:
        return HarnessConfig(
            Batching(self.batch_size, self.batch_delay_ms, self.pool_max), self.max_queue,
            self.warmup, self.warmup_cases, self.warmup_atol, self.warmup_rtol,
            self.drain_timeout_s * 4, self.load_nice, self.gil_cpu)
