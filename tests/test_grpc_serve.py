"""KServe v2 / Triton gRPC over real gRPC on 127.0.0.1: tritonclient.grpc unchanged, every bad
request a clear status code, the server still ready afterwards."""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as tg
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException

from paddlehot_cli.core import load
from paddlehot_cli.serve.app import ServeOptions
from paddlehot_cli.serve.grpc_server import GrpcFrontEnd
from tests.conftest import MODELS
from tests.serve_fixtures.helpers import metric, publish_copy, start_runtime

X = np.random.default_rng(3).standard_normal((3, 16)).astype("float32")
FEATS = np.random.default_rng(4).standard_normal((2, 4)).astype("float32")
IDS = np.array([[1, 2, 3], [4, 5, 9]], dtype="int64")
TWO = (f"{MODELS / 'two_inputs.py'}:TwoInputs", "--input", "feats:float32:[-1,4]",
       "--input", "ids:int64:[-1,-1]", "--output", "score", "--output", "ids2")


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    repo = tmp_path_factory.mktemp("grpc") / "repo"
    mlp1 = exported("demo:mlp")
    mlp2 = exported("demo:mlp", "pir", "1.0.0", 1)
    two = exported(*TWO[:1], "pir", "1.0.0", 0, *TWO[1:])
    publish_copy(mlp1, repo, "mlp", "1.0.0")
    publish_copy(mlp2, repo, "mlp", "1.1.0")
    publish_copy(two, repo, "two", "1.0.0")
    rt = start_runtime(repo, max_body_mb=0.05, grpc_port=0)
    expected = {}
    for version, pkg in (("1.0.0", mlp1), ("1.1.0", mlp2)):
        with load(pkg) as s:
            expected[version] = s.infer({"x": X})["logits"]
    with load(two) as s:
        expected["two"] = s.infer({"feats": FEATS, "ids": IDS})
    yield rt, f"127.0.0.1:{rt.grpc.port}", expected
    rt.stop_thread()


def _x(arr: np.ndarray = X, name: str = "x", datatype: str = "FP32") -> tg.InferInput:
    inp = tg.InferInput(name, list(arr.shape), datatype)
    inp.set_data_from_numpy(arr)
    return inp


def _fails(code: str, *needles: str):
    """Context: the call raises InferenceServerException with this status and message parts."""

    class _Check:
        def __enter__(self):
            return self

        def __exit__(self, kind, exc, tb):
            assert kind is InferenceServerException, f"expected {code}, got {kind}: {exc}"
            assert exc.status() == f"StatusCode.{code}", (exc.status(), exc.message())
            for needle in needles:
                assert needle in exc.message(), exc.message()
            return True

    return _Check()


def test_health_and_metadata(server):
    _rt, url, _ = server
    c = tg.InferenceServerClient(url)
    assert c.is_server_live() and c.is_server_ready()
    assert c.get_server_metadata(as_json=True)["name"] == "paddlehot"
    md = c.get_model_metadata("mlp", as_json=True)
    assert md["versions"] == ["1.1.0", "1.0.0"] and md["platform"] == "paddle_inference"
    assert md["inputs"] == [{"name": "x", "datatype": "FP32", "shape": ["-1", "16"]}]
    assert md["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": ["-1", "4"]}]
    two = c.get_model_metadata("two", as_json=True)
    assert [(t["name"], t["datatype"]) for t in two["inputs"]] == [("feats", "FP32"), ("ids", "INT64")]
    assert [(t["name"], t["datatype"]) for t in two["outputs"]] == [("score", "FP32"), ("ids2", "INT64")]
    assert c.is_model_ready("mlp") and c.is_model_ready("mlp", "1.0.0") and c.is_model_ready("mlp", "^1.0")
    assert not c.is_model_ready("mlp", "9.9.9") and not c.is_model_ready("nope")
    config = c.get_model_config("two", as_json=True)["config"]
    assert [i["data_type"] for i in config["input"]] == ["TYPE_FP32", "TYPE_INT64"]
    with _fails("NOT_FOUND", "unknown model 'nope'"):
        c.get_model_metadata("nope")
    with _fails("NOT_FOUND", "9.9.9"):
        c.get_model_metadata("mlp", "9.9.9")


@pytest.mark.parametrize("version, served", [("", "1.1.0"), ("1.0.0", "1.0.0"), ("^1.0", "1.1.0"),
                                             ("~1.0", "1.0.0"), (">=1.0,<1.1", "1.0.0")],
                         ids=["latest", "exact", "caret", "tilde", "range"])
def test_infer_versions_and_ranges(server, version, served):
    _rt, url, expected = server
    res = tg.InferenceServerClient(url).infer("mlp", [_x()], model_version=version, request_id="r7")
    response = res.get_response()
    assert response.model_version == served and response.id == "r7"
    np.testing.assert_allclose(res.as_numpy("logits"), expected[served], rtol=1e-5, atol=1e-6)


def test_labels_route_grpc_like_http(server):
    rt, url, expected = server
    base = f"http://127.0.0.1:{rt.port}"
    r = httpx.put(f"{base}/v2/repository/models/mlp/labels", json={"labels": {"stable": "1.0.0"}})
    assert r.status_code == 200, r.text
    try:
        c = tg.InferenceServerClient(url)
        for selector in ("stable", ""):  # unpinned traffic goes to `stable` too
            res = c.infer("mlp", [_x()], model_version=selector)
            assert res.get_response().model_version == "1.0.0"
            np.testing.assert_allclose(res.as_numpy("logits"), expected["1.0.0"], rtol=1e-5,
                                       atol=1e-6)
        with _fails("NOT_FOUND", "canary"):
            c.infer("mlp", [_x()], model_version="canary")
    finally:
        assert httpx.delete(f"{base}/v2/repository/models/mlp/labels").status_code == 200


def test_two_inputs_two_outputs_int64_and_float32(server):
    _rt, url, expected = server
    c = tg.InferenceServerClient(url)
    res = c.infer("two", [_x(FEATS, "feats"), _x(IDS, "ids", "INT64")])
    assert res.as_numpy("ids2").dtype == np.int64
    np.testing.assert_array_equal(res.as_numpy("ids2"), expected["two"]["ids2"])
    np.testing.assert_allclose(res.as_numpy("score"), expected["two"]["score"], rtol=1e-5, atol=1e-6)
    only = c.infer("two", [_x(FEATS, "feats"), _x(IDS, "ids", "INT64")],
                   outputs=[tg.InferRequestedOutput("ids2")])
    assert [o.name for o in only.get_response().outputs] == ["ids2"]


def _typed_request() -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="two")
    feats = req.inputs.add(name="feats", datatype="FP32", shape=FEATS.shape)
    feats.contents.fp32_contents.extend(FEATS.ravel().tolist())
    ids = req.inputs.add(name="ids", datatype="INT64", shape=IDS.shape)
    ids.contents.int64_contents.extend(IDS.ravel().tolist())
    return req


def test_typed_contents_in_typed_contents_out(server):
    """Clients that send `contents` instead of raw bytes get typed outputs back."""
    _rt, url, expected = server
    with grpc.insecure_channel(url) as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(_typed_request())
    assert not response.raw_output_contents
    score, ids2 = response.outputs
    assert (score.datatype, list(score.shape)) == ("FP32", [2, 8])
    np.testing.assert_allclose(np.array(score.contents.fp32_contents).reshape(2, 8),
                               expected["two"]["score"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.array(ids2.contents.int64_contents).reshape(2, 3),
                                  expected["two"]["ids2"])


def _typed_error(url: str, request: pb.ModelInferRequest) -> grpc.RpcError:
    with grpc.insecure_channel(url) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    return info.value


def test_bad_requests_are_invalid_argument_and_server_stays_ready(server):
    rt, url, expected = server
    c = tg.InferenceServerClient(url)
    cases = [
        ([_x(X.astype("float64"), datatype="FP64")], "dtype float64, the model expects float32"),
        ([_x(X[:, :8])], "input 'x'"),
        ([_x(name="y")], "unknown input 'y'"),
        ([_x(), _x(name="x")], "given twice"),
    ]
    for inputs, needle in cases:
        with _fails("INVALID_ARGUMENT", needle):
            c.infer("mlp", inputs)
    with _fails("INVALID_ARGUMENT", "missing input 'ids'"):
        c.infer("two", [_x(FEATS, "feats")])
    with _fails("INVALID_ARGUMENT", "unknown output 'nope'; the model has: logits"):
        c.infer("mlp", [_x()], outputs=[tg.InferRequestedOutput("nope")])
    with _fails("INVALID_ARGUMENT", "invalid model name"):
        c.infer("..", [_x()])
    with _fails("INVALID_ARGUMENT", "invalid version"):
        c.infer("mlp", [_x()], model_version="1/../2")
    # hand-built messages: what tritonclient would never send
    bad = pb.ModelInferRequest(model_name="mlp")
    bad.inputs.add(name="x", datatype="FP32", shape=[3, 16])
    bad.raw_input_contents.append(b"\0" * 10)
    err = _typed_error(url, bad)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "input 'x': raw_input_contents has 10 bytes, but shape [3, 16] of FP32 needs 192"
    wrong_field = _typed_request()
    wrong_field.inputs[1].contents.Clear()
    wrong_field.inputs[1].contents.int_contents.extend(IDS.ravel().tolist())
    err = _typed_error(url, wrong_field)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "int64_contents" in err.details()
    short = _typed_request()
    del short.inputs[0].contents.fp32_contents[-1]
    assert "has 7 elements, shape [2, 4] needs 8" in _typed_error(url, short).details()
    for shape, needle in (([0, 2**62], "dimension over"), ([2**32, 2**32, 0], "dimension over"),
                          ([1] * 100, "100 dimensions")):  # once tracebacks and INTERNAL
        huge = pb.ModelInferRequest(model_name="mlp")
        huge.inputs.add(name="x", datatype="FP32", shape=shape)
        huge.raw_input_contents.append(b"")
        err = _typed_error(url, huge)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in err.details(), shape
    # NOT_FOUND: unknown model, a version that does not exist
    with _fails("NOT_FOUND", "unknown model 'nope'"):
        c.infer("nope", [_x()])
    with _fails("NOT_FOUND", "9.9.9"):
        c.infer("mlp", [_x()], model_version="9.9.9")
    # larger than --max-body-mb (0.05 MB here)
    with _fails("RESOURCE_EXHAUSTED", "larger than max"):
        c.infer("mlp", [_x(np.zeros((1000, 16), "float32"))])
    # nothing was lost: the server is ready and answers
    assert c.is_server_ready()
    np.testing.assert_allclose(c.infer("mlp", [_x()]).as_numpy("logits"), expected["1.1.0"],
                               rtol=1e-5, atol=1e-6)
    text = httpx.get(f"http://127.0.0.1:{rt.port}/metrics").text
    assert metric(text, "paddlehot_requests_total", protocol="grpc", outcome="ok") > 0
    assert metric(text, "paddlehot_requests_total", protocol="grpc", outcome="bad_input") > 0
    assert metric(text, "paddlehot_requests_total", protocol="grpc", outcome="error") == 0


def test_repository_index_unload_load(server):
    _rt, url, _ = server
    c = tg.InferenceServerClient(url)
    index = c.get_model_repository_index(as_json=True)["models"]
    assert {(m["name"], m["version"], m["state"]) for m in index} >= {
        ("mlp", "1.1.0", "READY"), ("mlp", "1.0.0", "READY"), ("two", "1.0.0", "READY")}
    c.unload_model("two")
    try:
        assert not c.is_model_ready("two")
        with _fails("NOT_FOUND", "unknown model 'two'"):
            c.infer("two", [_x(FEATS, "feats"), _x(IDS, "ids", "INT64")])
        rows = c.get_model_repository_index(as_json=True)["models"]
        assert {"name": "two", "version": "1.0.0", "state": "UNAVAILABLE", "reason": "unloaded"} in rows
    finally:
        c.load_model("two")
    assert c.is_model_ready("two")
    with _fails("INVALID_ARGUMENT", "invalid model name"):
        c.load_model("../etc")
    with _fails("INVALID_ARGUMENT", "not supported"):
        c.load_model("two", config='{"backend": "onnx"}')


@pytest.fixture
def front_end(server):
    """A second gRPC front end over the same manager, with other admin options."""
    rt = server[0]
    started = []

    def make(**options) -> str:
        fe = GrpcFrontEnd(rt.manager, rt.metrics, ServeOptions(**options))
        fe.bind("127.0.0.1", 0)
        fe.start()
        started.append(fe)
        return f"127.0.0.1:{fe.port}"

    yield make
    for fe in started:
        fe.stop(5)


def test_admin_token_as_metadata(front_end):
    c = tg.InferenceServerClient(front_end(admin_token="s3cret"))
    with _fails("UNAUTHENTICATED", "missing or wrong token"):
        c.unload_model("two")
    with _fails("UNAUTHENTICATED", "missing or wrong token"):
        c.load_model("two", headers={"authorization": "Bearer wrong"})
    c.load_model("two", headers={"authorization": "Bearer s3cret"})
    assert c.is_model_ready("two")


def test_admin_without_token_beyond_loopback_is_permission_denied(front_end):
    # admin_open=False is what a server listening beyond loopback without --admin-token gets
    c = tg.InferenceServerClient(front_end(admin_open=False))
    with _fails("PERMISSION_DENIED", "without --admin-token"):
        c.load_model("two")
    assert c.is_model_ready("two")


def test_grpc_connections_are_bounded(fresh_mlp_repo):
    """At most --max-connections; a socket that never sends the HTTP/2 preface and a channel
    that makes no call are closed; the server still answers afterwards."""
    import socket
    import time

    rt = start_runtime(fresh_mlp_repo, grpc_port=0, max_connections=4, head_timeout_s=1.0, grpc_idle_s=1.5)
    port = rt.grpc.port
    try:
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(7)]
        time.sleep(0.5)
        started = time.monotonic()

        def closed(s: socket.socket) -> bool:
            try:
                while s.recv(4096):
                    pass
                return True
            except OSError:
                return True  # reset: closed too

        assert all(closed(s) for s in socks[4:])  # beyond the cap: closed at once
        assert time.monotonic() - started < 1.0
        assert all(closed(s) for s in socks[:4])  # preface never sent: closed at the deadline
        assert time.monotonic() - started < 4
        for s in socks:
            s.close()
        c = tg.InferenceServerClient(f"127.0.0.1:{port}")
        assert c.is_server_live()
        np.testing.assert_allclose(c.infer("mlp", [_x()]).as_numpy("logits").shape, (3, 4))
    finally:
        rt.stop_thread()
