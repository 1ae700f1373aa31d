"""The kserve SDK's view of a deploy template: `python -m tests.kserve_fields TYPE PATH < doc.json`
prints the JSON list of paths in the document that the OpenAPI model TYPE does not define (or of
the wrong type). A child process of tests/test_kserve_templates.py: kserve cannot be imported
beside tritonclient.grpc (both register the protobuf package `inference`)."""

from __future__ import annotations

import json
import sys

import kserve

PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


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


if __name__ == "__main__":
    print(json.dumps(_unknown_fields(json.load(sys.stdin), sys.argv[1], sys.argv[2])))
