"""templates/deploy/kserve/: every field is one KServe (and Kubernetes) define, checked against the
kserve SDK's model classes; the container runs a `paddlehot serve` command line that parses, on
the ports it declares, and its probes answer 200 on a real server."""

from __future__ import annotations

import os

import httpx
import pytest
import typer.main
import yaml

from paddlehot_cli.cli.main import app
from tests.conftest import ROOT
from tests.serve_fixtures.helpers import publish_copy, start_runtime

TEMPLATES = ROOT / "templates" / "deploy" / "kserve"
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}

if os.environ.get("CI"):  # .ci/run installs the test extra: a missing SDK is a failure there
    import kserve
else:
    kserve = pytest.importorskip("kserve", reason="needs the kserve SDK (pip install -e '.[test]')")


def _model_class(name: str):
    import kubernetes.client

    for module in (kserve, kserve.models, kubernetes.client):
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"no model class {name} in the kserve SDK or the kubernetes client")


def _unknown_fields(doc, type_name: str, path: str) -> list[str]:
    """Paths in `doc` that the OpenAPI model `type_name` does not define, or of the wrong type."""
    # the SDKs spell containers list[X] / List[X] and dict(str, X) / Dict[str, X]
    if type_name[:5].lower() == "list[":
        if not isinstance(doc, list):
            return [f"{path}: expected a list"]
        return [e for i, item in enumerate(doc) for e in _unknown_fields(item, type_name[5:-1],
                                                                          f"{path}[{i}]")]
    if type_name[:5].lower() in ("dict(", "dict["):
        value_type = type_name[5:-1].split(", ", 1)[1]
        if not isinstance(doc, dict):
            return [f"{path}: expected a mapping"]
        return [e for k, v in doc.items() for e in _unknown_fields(v, value_type, f"{path}.{k}")]
    if type_name in PRIMITIVES:
        wanted = PRIMITIVES[type_name]
        ok = isinstance(doc, wanted) and not (wanted is int and isinstance(doc, bool))
        return [] if ok else [f"{path}: expected {type_name}, got {type(doc).__name__}"]
    cls = _model_class(type_name)
    if not isinstance(doc, dict):
        return [f"{path}: expected a {type_name} mapping"]
    by_json = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    errors = [f"{path}.{k}: not a field of {type_name}" for k in doc if k not in by_json]
    for key, value in doc.items():
        if key in by_json:
            errors += _unknown_fields(value, cls.openapi_types[by_json[key]], f"{path}.{key}")
    return errors


def _load(name: str) -> dict:
    return yaml.safe_load((TEMPLATES / name).read_text())


def test_field_names_and_types_are_kserves():
    runtime, isvc = _load("servingruntime.yaml"), _load("inferenceservice.yaml")
    assert (runtime["apiVersion"], runtime["kind"]) == ("serving.kserve.io/v1alpha1", "ServingRuntime")
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert _unknown_fields(runtime, "V1alpha1ServingRuntime", "ServingRuntime") == []
    assert _unknown_fields(isvc, "V1beta1InferenceService", "InferenceService") == []
    # the checker itself catches a misspelt field
    runtime["spec"]["containers"][0]["readinessProbes"] = {}
    assert _unknown_fields(runtime, "V1alpha1ServingRuntime", "ServingRuntime") == [
        "ServingRuntime.spec.containers[0].readinessProbes: not a field of V1Container"]


def test_inference_service_uses_the_runtime():
    runtime, isvc = _load("servingruntime.yaml"), _load("inferenceservice.yaml")
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]
    assert {"v2", "grpc-v2"} <= set(runtime["spec"]["protocolVersions"])


def test_container_runs_paddlehot_serve_on_its_ports(exported, tmp_path):
    container = _load("servingruntime.yaml")["spec"]["containers"][0]
    assert container["name"] == "kserve-container" and container["command"] == ["paddlehot"]
    args = container["args"]
    assert args[:2] == ["serve", "/mnt/models"]
    serve_cmd = typer.main.get_command(app).commands["serve"]
    params = serve_cmd.make_context("serve", list(args[1:])).params  # parses like the CLI does
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http1": params["port"], "h2c": params["grpc_port"]}
    assert params["host"] == "0.0.0.0"
    probes = [container[k]["httpGet"] for k in ("livenessProbe", "readinessProbe", "startupProbe")]
    assert {p["port"] for p in probes} == {params["port"]}
    # every probe path answers 200 on a real server
    repo = tmp_path / "repo"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 71), repo, "mlp", "1.0.0")
    rt = start_runtime(repo)
    try:
        for probe in probes:
            assert httpx.get(f"http://127.0.0.1:{rt.port}{probe['path']}").status_code == 200
    finally:
        rt.stop_thread()
