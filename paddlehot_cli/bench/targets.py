"""What a benchmark runs against: an in-process servable (package dir, plugin .so, REPO:NAME)
or any Open Inference Protocol v2 server over HTTP."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from paddlehot_cli.bench.oip_client import Endpoint, OipClient, RequestFailed
from paddlehot_cli.bench.resources import metrics_reader, proc_reader
from paddlehot_cli.core.signature import TensorSpec
from paddlehot_cli.errors import UserError

# A call sends one batch and returns the model version that answered (None if unknown).
Call = Callable[[Mapping[str, np.ndarray]], "str | None"]


class Target:
    label: str
    kind: str
    inputs: Sequence[TensorSpec]
    remote = False  # over the network: the load generator's own CPU is reported

    def new_caller(self) -> tuple[Call, Callable[[], None]]:
        """A call function for one worker thread, and its cleanup."""
        raise NotImplementedError

    def resource_reader(self) -> Callable[[], tuple[float, float] | None] | None:
        return None

    def pool_size(self) -> int | None:
        """Predictors in the pool under test now (None: not known from here)."""
        return None

    def close(self) -> None:
        pass


class ThisProcess(Target):
    """Targets that run in this process: CPU and RSS are this process's."""

    def resource_reader(self) -> Callable[[], tuple[float, float] | None]:
        return proc_reader(os.getpid())


class InProcessTarget(ThisProcess):
    """A servable from core.load (package dir or plugin .so), called from this process."""

    def __init__(self, path: Path, threads: int, pool_max: int):
        from paddlehot_cli.core import load
        from paddlehot_cli.plugin.pdcapi import build_pdcapi

        self.servable = load(path, threads=threads, pool_max=pool_max, c_api=build_pdcapi)
        manifest = self.servable.manifest
        self.kind = self.servable.kind
        self.label = f"{self.kind}:{path}"
        self.inputs = manifest.inputs
        self.version = manifest.version

    def new_caller(self) -> tuple[Call, Callable[[], None]]:
        infer = self.servable.infer
        version = self.version

        def call(feeds: Mapping[str, np.ndarray]) -> str | None:
            infer(feeds)
            return version

        return call, lambda: None

    def pool_size(self) -> int | None:
        return self.servable.pool_size

    def close(self) -> None:
        self.servable.close()


class ManagedTarget(ThisProcess):
    """`REPO:NAME` in-process through the core: a RepositorySource watching REPO and a Manager
    swapping versions exactly as `paddlehot serve` does, without HTTP in between."""

    kind = "manager"

    def __init__(self, repo: Path, name: str, threads: int):
        from paddlehot_cli.core import load
        from paddlehot_cli.core.manager import Manager, ManagerConfig
        from paddlehot_cli.core.source import RepositorySource

        self.repo, self.name = repo, name
        self.label = f"{repo}:{name}"
        # serve's defaults (one predictor, one worker per version): the same setup it measures
        self.manager = Manager(lambda p: load(p, threads=threads, pool_max=1),
                               ManagerConfig(pool_max=1))
        self.source = RepositorySource(repo, self.manager.set_available,
                                       self.manager.report_invalid, poll_interval=0.5)
        self.manager.rescan = self.source.scan_model
        try:
            self.source.check()
            self.source.scan()
            self.manager.wait_idle(300.0)
            if not self.manager.model_ready(name):
                raise UserError(f"{self.label}: no version of '{name}' could be loaded")
            self.inputs = self.manager.servable(name).manifest.inputs
            self.source.start()
        except BaseException:
            self.close()
            raise

    def new_caller(self) -> tuple[Call, Callable[[], None]]:
        import threading

        manager, name = self.manager, self.name

        def call(feeds: Mapping[str, np.ndarray]) -> str | None:
            handle = manager.acquire(name)
            version = handle.ref.version
            finished = threading.Event()
            box: list = [None]

            def done(out: object, exc: BaseException | None) -> None:
                box[0] = exc
                finished.set()

            manager.submit(handle, feeds, done)
            finished.wait()
            if box[0] is not None:
                raise box[0]
            return version

        return call, lambda: None

    def close(self) -> None:
        self.source.stop()
        self.manager.stop()


class HttpTarget(Target):
    """Any OIP v2 server; the signature comes from its model metadata."""

    kind = "http"
    remote = True

    def __init__(self, url: str, timeout: float, binary: bool = True, pid: int | None = None):
        self.endpoint = Endpoint.parse(url)
        self.timeout = timeout
        self.binary = binary
        self.pid = pid
        self.label = url
        self.inputs = _remote_inputs(OipClient(self.endpoint, timeout=min(timeout, 10.0)), url,
                                     lambda meta: meta.get("inputs", []))

    def new_caller(self) -> tuple[Call, Callable[[], None]]:
        client = OipClient(self.endpoint, timeout=self.timeout)
        binary = self.binary

        def call(feeds: Mapping[str, np.ndarray]) -> str | None:
            return client.infer(feeds, binary=binary)[1]

        return call, client.close

    def pool_size(self) -> int | None:
        """The server's paddlehot_pool_size of this model (every loaded version), from /metrics."""
        client = getattr(self, "_metrics_client", None)
        if client is None:
            client = self._metrics_client = OipClient(self.endpoint, timeout=5.0)
        try:
            status, _, data = client._request("GET", "/metrics")
        except Exception:  # noqa: BLE001 - a missed sample, not a failed bench
            return None
        if status != 200:
            return None
        mark = f'model="{self.endpoint.model}"'
        sizes = [float(line.rsplit(" ", 1)[1]) for line in data.decode().splitlines()
                 if line.startswith("paddlehot_pool_size{") and mark in line]
        return int(sum(sizes)) if sizes else None

    def resource_reader(self) -> Callable[[], tuple[float, float] | None] | None:
        if self.pid is not None:
            return proc_reader(self.pid)
        client = OipClient(self.endpoint, timeout=5.0)

        def fetch() -> str:
            status, _, data = client._request("GET", "/metrics")
            if status != 200:
                raise RequestFailed(f"HTTP {status}")
            return data.decode()

        reader = metrics_reader(fetch)
        return reader if reader() is not None else None


def _remote_inputs(probe: Any, url: str, tensors: Callable[[Any], list[dict]]) -> tuple:
    """A remote model's input specs from its metadata (HTTP or gRPC `probe`, closed after), as
    `tensors` lists them in v2 JSON form; a server that cannot say is one clear error."""
    try:
        meta = probe.metadata()
    except RequestFailed as exc:
        raise UserError(f"cannot read model metadata from {url}: {exc}") from None
    finally:
        probe.close()
    inputs = tuple(_spec_from_metadata(t) for t in tensors(meta))
    if not inputs:
        raise UserError(f"{url}: the model metadata lists no inputs")
    return inputs


class GrpcTarget(Target):
    """Any KServe v2 / Triton gRPC server; the signature comes from its ModelMetadata. CPU and
    RSS only with --pid (the gRPC service has no /metrics)."""

    kind = "grpc"
    remote = True

    def __init__(self, url: str, timeout: float, pid: int | None = None):
        from paddlehot_cli.bench.grpc_client import GrpcClient, GrpcEndpoint

        self.endpoint = GrpcEndpoint.parse(url)
        self.timeout, self.pid, self.label = timeout, pid, url
        self.inputs = _remote_inputs(
            GrpcClient(self.endpoint, timeout=min(timeout, 10.0)), url,
            lambda meta: [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                          for t in meta.inputs])

    def new_caller(self) -> tuple[Call, Callable[[], None]]:
        from paddlehot_cli.bench.grpc_client import GrpcClient

        client = GrpcClient(self.endpoint, timeout=self.timeout)

        def call(feeds: Mapping[str, np.ndarray]) -> str | None:
            return client.infer(feeds)[1]

        return call, client.close

    def resource_reader(self) -> Callable[[], tuple[float, float] | None] | None:
        return proc_reader(self.pid) if self.pid is not None else None


def _spec_from_metadata(tensor: Mapping[str, Any]) -> TensorSpec:
    from paddlehot_cli.bench.oip_client import NUMPY_DTYPES

    dtype = NUMPY_DTYPES.get(str(tensor.get("datatype")))
    if dtype is None:
        raise UserError(f"input '{tensor.get('name')}' has an unsupported datatype "
                        f"{tensor.get('datatype')!r}")
    return TensorSpec(str(tensor["name"]), dtype, tuple(int(d) for d in tensor.get("shape", [])))


def open_target(spec: str, threads: int = 1, pool_max: int = 1, timeout: float = 30.0,
                pid: int | None = None) -> Target:
    if spec.startswith(("http://", "https://")):
        if spec.startswith("https://"):
            raise UserError("https targets are not supported; benchmark the server on http")
        return HttpTarget(spec, timeout, pid=pid)
    if spec.startswith("grpc://"):
        return GrpcTarget(spec, timeout, pid=pid)
    path = Path(spec)
    if ":" in spec and not path.exists():
        from paddlehot_cli.core.repository import resolve_version

        repo_text, _, ref = spec.rpartition(":")
        if "@" not in ref:  # the model as served: swaps included
            resolve_version(spec)  # one clear error if nothing is published
            return ManagedTarget(Path(repo_text), ref, threads)
        path = resolve_version(spec)
    if not path.exists():
        raise UserError(f"no such target: {spec}",
                        hint="give a package dir, a plugin .so, REPO:NAME, http://HOST:PORT/NAME or "
                        "grpc://HOST:PORT/NAME")
    if not (path.is_dir() or path.suffix == ".so"):
        raise UserError(f"{spec} is not a package directory, a plugin .so, or a URL")
    return InProcessTarget(path, threads, pool_max)
