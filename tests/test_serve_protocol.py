"""Open Inference Protocol v2 over real HTTP: tritonclient unchanged, every bad input a 4xx."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from paddlehot_cli.core import load
from paddlehot_cli.serve.app import ServeOptions, Server
from tests.serve_fixtures.helpers import metric, publish_copy, start_runtime

X = np.random.default_rng(1).standard_normal((3, 16)).astype("float32")


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    repo = tmp_path_factory.mktemp("proto") / "repo"
    pkg = exported("demo:mlp")
    pkg2 = exported("demo:mlp", "pir", "1.0.0", 1)
    publish_copy(pkg, repo, "mlp", "1.0.0")
    publish_copy(pkg2, repo, "mlp", "1.1.0")
    rt = start_runtime(repo, max_body_mb=0.05, admin_token=None)
    with load(pkg) as s1, load(pkg2) as s2:
        expected = {"1.0.0": s1.infer({"x": X})["fetch_name_0"] if "fetch_name_0" in s1.output_names
                    else next(iter(s1.infer({"x": X}).values())),
                    "1.1.0": next(iter(s2.infer({"x": X}).values()))}
    yield rt, f"127.0.0.1:{rt.port}", expected, repo
    rt.stop_thread()


def _json_body(**over):
    item = {"name": "x", "datatype": "FP32", "shape": [3, 16], "data": X.ravel().tolist()}
    item.update(over)
    return {"inputs": [item]}


def test_tritonclient_metadata_and_health(server):
    rt, url, _, _ = server
    c = triton.InferenceServerClient(url)
    assert c.is_server_live() and c.is_server_ready()
    meta = c.get_server_metadata()
    assert "binary_tensor_data" in meta["extensions"]
    md = c.get_model_metadata("mlp")
    assert md["name"] == "mlp" and md["versions"] == ["1.1.0", "1.0.0"]
    assert md["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 16]}]
    assert md["outputs"][0]["datatype"] == "FP32"
    assert c.get_model_metadata("mlp", "1.0.0")["parameters"]["version"] == "1.0.0"
    assert c.is_model_ready("mlp") and c.is_model_ready("mlp", "1.0.0")
    assert not c.is_model_ready("mlp", "9.9.9") and not c.is_model_ready("nope")


@pytest.mark.parametrize("binary_in", [False, True])
@pytest.mark.parametrize("binary_out", [False, True])
@pytest.mark.parametrize("version", ["", "1.0.0"])
def test_tritonclient_infer(server, binary_in, binary_out, version):
    rt, url, expected, _ = server
    c = triton.InferenceServerClient(url)
    inp = triton.InferInput("x", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=binary_in)
    md = c.get_model_metadata("mlp")
    out = triton.InferRequestedOutput(md["outputs"][0]["name"], binary_data=binary_out)
    res = c.infer("mlp", [inp], model_version=version, outputs=[out], request_id="r1")
    got = res.as_numpy(md["outputs"][0]["name"])
    v = res.get_response()["model_version"]
    assert v == (version or "1.1.0") and res.get_response()["id"] == "r1"
    np.testing.assert_allclose(got, expected[v], rtol=1e-5, atol=1e-6)


def test_tritonclient_compressed_request(server):
    rt, url, expected, _ = server
    c = triton.InferenceServerClient(url)
    inp = triton.InferInput("x", list(X.shape), "FP32")
    inp.set_data_from_numpy(X)
    res = c.infer("mlp", [inp], request_compression_algorithm="gzip")
    np.testing.assert_allclose(next(iter([res.as_numpy(o["name"]) for o in res.get_response()["outputs"]])),
                               expected["1.1.0"], rtol=1e-5, atol=1e-6)


def test_selectors_labels_and_ranges(server):
    rt, url, expected, _ = server
    base = f"http://{url}"
    for sel, want in [("%5E1.0", "1.1.0"), ("~1.0", "1.0.0"), ("%3E%3D1.0.0%2C%3C1.1", "1.0.0"), ("1.*", "1.1.0")]:
        r = httpx.post(f"{base}/v2/models/mlp/versions/{sel}/infer", json=_json_body())
        assert r.status_code == 200, (sel, r.text)
        assert r.json()["model_version"] == want, sel
    r = httpx.put(f"{base}/v2/repository/models/mlp/labels", json={"labels": {"stable": "1.0.0"}})
    assert r.status_code == 200, r.text
    try:
        assert httpx.post(f"{base}/v2/models/mlp/infer", json=_json_body()).json()["model_version"] == "1.0.0"
        assert httpx.post(f"{base}/v2/models/mlp/versions/stable/infer", json=_json_body()).json()["model_version"] == "1.0.0"
        r = httpx.put(f"{base}/v2/repository/models/mlp/labels",
                      json={"labels": {"stable": "1.0.0", "canary": "1.1.0"}, "canary_weight": 30})
        assert r.status_code == 200
        versions = [httpx.post(f"{base}/v2/models/mlp/infer", json=_json_body()).json()["model_version"]
                    for _ in range(200)]
        share = versions.count("1.1.0") / len(versions)
        assert 0.15 < share < 0.45, share
        assert httpx.post(f"{base}/v2/models/mlp/versions/nolabel/infer", json=_json_body()).status_code == 404
        bad = httpx.put(f"{base}/v2/repository/models/mlp/labels", json={"labels": {"x": "1.0"}})
        assert bad.status_code == 400 and "SemVer" in bad.json()["error"]
    finally:
        assert httpx.delete(f"{base}/v2/repository/models/mlp/labels").status_code == 200
    assert httpx.post(f"{base}/v2/models/mlp/infer", json=_json_body()).json()["model_version"] == "1.1.0"


BAD = [
    ("wrong input name", "/v2/models/mlp/infer", _json_body(name="y"), None, 400, "unknown input 'y'"),
    ("wrong dtype", "/v2/models/mlp/infer",
     _json_body(datatype="FP64"), None, 400, "dtype float64"),
    ("wrong shape", "/v2/models/mlp/infer",
     _json_body(shape=[4, 12]), None, 400, "dim 1 must be 16"),
    ("wrong rank", "/v2/models/mlp/infer", _json_body(shape=[48]), None, 400, "rank 1"),
    ("data count", "/v2/models/mlp/infer", _json_body(shape=[2, 16]), None, 400, "48 elements"),
    ("extra input", "/v2/models/mlp/infer",
     {"inputs": _json_body()["inputs"] + [dict(_json_body()["inputs"][0], name="z")]}, None, 400,
     "unknown input 'z'"),
    ("missing inputs", "/v2/models/mlp/infer", {"inputs": []}, None, 400, "non-empty"),
    ("duplicate input", "/v2/models/mlp/infer",
     {"inputs": _json_body()["inputs"] * 2}, None, 400, "given twice"),
    ("not numbers", "/v2/models/mlp/infer", _json_body(data=["a"] * 48), None, 400, "not a list of FP32"),
    ("BYTES", "/v2/models/mlp/infer", _json_body(datatype="BYTES"), None, 400, "BYTES"),
    ("bad datatype", "/v2/models/mlp/infer", _json_body(datatype="FLOAT"), None, 400, "unknown datatype"),
    ("bad shape field", "/v2/models/mlp/infer", _json_body(shape=[3, -16]), None, 400, "non-negative"),
    ("unknown output", "/v2/models/mlp/infer",
     dict(_json_body(), outputs=[{"name": "nope"}]), None, 400, "unknown output 'nope'"),
    ("unknown model", "/v2/models/nope/infer", _json_body(), None, 404, "unknown model"),
    ("unknown version", "/v2/models/mlp/versions/9.9.9/infer", _json_body(), None, 404, "not loaded"),
    ("no match range", "/v2/models/mlp/versions/%5E7/infer", _json_body(), None, 404, "matches"),
    ("dotdot name", "/v2/models/%2E%2E/infer", _json_body(), None, 400, "invalid model name"),
    ("dotdot name 2", "/v2/models/a..b/infer", _json_body(), None, 400, "invalid model name"),
    ("slash name", "/v2/models/a%2Fb/infer", _json_body(), None, 400, "invalid model name"),
    ("dotdot version", "/v2/models/mlp/versions/..%2F1/infer", _json_body(), None, 400, "invalid version"),
    ("unknown endpoint", "/v2/models/mlp/frobnicate", _json_body(), None, 404, "no such endpoint"),
    # not exactly an infer path: the direct ASGI path hands it on to the Starlette routes
    ("after infer", "/v2/models/mlp/infer/more", _json_body(), None, 404, "no such endpoint"),
]


def test_infer_needs_post(server):
    rt, url, _, _ = server
    r = httpx.get(f"http://{url}/v2/models/mlp/versions/1.0.0/infer")
    assert r.status_code == 405 and "POST" in r.json()["error"]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_requests_are_4xx_and_server_keeps_serving(server, case):
    rt, url, _, _ = server
    _, path, body, headers, status, needle = case
    with httpx.Client(base_url=f"http://{url}") as c:
        r = c.post(path, content=json.dumps(body).encode(), headers=headers or {})
        assert r.status_code == status, r.text
        assert needle in r.json()["error"], r.json()
        assert c.post("/v2/models/mlp/infer", json=_json_body()).status_code == 200


def _raw(c, body: bytes, headers: dict):
    return c.post("/v2/models/mlp/infer", content=body, headers=headers)


def test_malformed_json_binary_sizes_and_oversized(server):
    rt, url, _, _ = server
    header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 16],
                                      "parameters": {"binary_data_size": 192}}]}).encode()
    blob = X.tobytes()
    with httpx.Client(base_url=f"http://{url}") as c:
        cases = [
            (b'{"inputs": [', {}, 400, "malformed JSON"),
            (b"[1, 2]", {}, 400, "JSON object"),
            (header + blob[:-4], {"Inference-Header-Content-Length": str(len(header))}, 400, "binary"),
            (header + blob + b"xx", {"Inference-Header-Content-Length": str(len(header))}, 400,
             "binary data"),
            (header + blob, {"Inference-Header-Content-Length": str(len(header) + 10**6)}, 400,
             "Inference-Header-Content-Length"),
            (header + blob, {"Inference-Header-Content-Length": "abc"}, 400, "integer"),
            (header.replace(b"192", b"100") + blob[:100],
             {"Inference-Header-Content-Length": str(len(header))}, 400, "needs 192"),
            (b"x" * 60_000, {}, 413, "larger than"),
            (b"not gzip", {"Content-Encoding": "gzip"}, 400, "gzip"),
        ]
        for body, headers, status, needle in cases:
            r = _raw(c, body, headers)
            assert r.status_code == status, (needle, r.text)
            assert needle in r.json()["error"], (needle, r.json())
        r = _raw(c, header + blob, {"Inference-Header-Content-Length": str(len(header))})
        assert r.status_code == 200, r.text
        text = c.get("/metrics").text
        assert metric(text, "paddlehot_rejected_requests_total", reason="400") > 0
        assert metric(text, "paddlehot_requests_total", outcome="error") == 0


def test_repository_extension(server):
    rt, url, _, repo = server
    c = triton.InferenceServerClient(url)
    index = c.get_model_repository_index()
    assert {(r["name"], r["version"], r["state"]) for r in index} == {
        ("mlp", "1.1.0", "READY"), ("mlp", "1.0.0", "READY")}
    c.unload_model("mlp")
    assert not c.is_model_ready("mlp") and not c.is_server_ready()
    with pytest.raises(InferenceServerException):
        c.infer("mlp", [triton.InferInput("x", [1, 16], "FP32").set_data_from_numpy(X[:1])])
    c.load_model("mlp")
    assert c.is_model_ready("mlp") and c.is_server_ready()
    with pytest.raises(InferenceServerException, match="unknown model"):
        c.load_model("nope")


def test_admin_token_and_non_loopback(server):
    import asyncio

    rt, url, _, _ = server
    guarded = Server(rt.manager, options=ServeOptions(admin_token="s3cret", admin_open=False))
    closed = Server(rt.manager, options=ServeOptions(admin_token=None, admin_open=False))

    async def go():
        g = httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded.app), base_url="http://t")
        cl = httpx.AsyncClient(transport=httpx.ASGITransport(app=closed.app), base_url="http://t")
        async with g, cl:
            assert (await g.post("/v2/repository/models/mlp/load")).status_code == 401
            assert (await g.post("/v2/repository/models/mlp/load",
                                 headers={"Authorization": "Bearer wrong"})).status_code == 401
            assert (await g.post("/v2/repository/models/mlp/load",
                                 headers={"Authorization": "Bearer s3cret"})).status_code == 200
            r = await cl.post("/v2/repository/models/mlp/unload")
            assert r.status_code == 403 and "--admin-token" in r.json()["error"]
            assert (await cl.put("/v2/repository/models/mlp/labels", json={})).status_code == 403
            assert (await cl.get("/v2/health/ready")).status_code == 200

    asyncio.run(go())


def test_the_asgi_app_answers_infer_like_serve(server):
    import asyncio

    # under another ASGI server (here httpx's transport) infer goes through fast_infer.py and
    # Server.infer_reply: same answers, checks and limits as serve's own protocol
    rt, _, expected, _ = server

    async def go():
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=rt.server.app),
                                   base_url="http://t")
        async with client:
            r = await client.post("/v2/models/mlp/versions/1.0.0/infer", json=_json_body())
            assert r.status_code == 200, r.text
            got = np.array(r.json()["outputs"][0]["data"], dtype="float32").reshape(X.shape[0], -1)
            np.testing.assert_allclose(got, expected["1.0.0"], rtol=1e-5, atol=1e-6)
            r = await client.post("/v2/models/mlp/infer", json=_json_body(shape=[3, 15]))
            assert r.status_code == 400 and "shape" in r.json()["error"]
            assert (await client.post("/v2/models/nope/infer", json=_json_body())).status_code == 404
            r = await client.post("/v2/models/mlp/infer", content=b"x" * 60_000)
            assert r.status_code == 413

    asyncio.run(go())
