"""TLS (issue 24 item 7): `serve --tls-cert/--tls-key` for REST (the own HTTP/1.1 fast path and
the Starlette routes) and gRPC (tritonclient with ssl=True), clients verifying a CA made in the
test; `push`/`pull --registry-ca` against a real docker-registry serving TLS. A client without
the CA, a wrong key, a lone flag: each ends in one clear line."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from paddlehot_cli.fleet.local_registry import LocalRegistry
from paddlehot_cli.serve.tls import server_tls
from tests.conftest import assert_one_line_error, cli
from tests.serve_fixtures.helpers import free_port, publish_copy, serve_argv, start_runtime


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(where: Path, cn: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = where / f"{cn}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


def make_leaf(where: Path, ca: x509.Certificate, ca_key, name: str = "server") -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = where / f"{name}.crt", where / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    where = tmp_path_factory.mktemp("pki")
    ca_path, ca, ca_key = make_ca(where, "paddlehot-test-ca")
    other_path, _, _ = make_ca(where, "someone-else")
    cert, key = make_leaf(where, ca, ca_key)
    return {"ca": ca_path, "other": other_path, "cert": cert, "key": key, "dir": where}


def _body() -> dict:
    x = np.random.default_rng(0).random((2, 16)).astype("float32")
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 16],
                        "data": x.ravel().tolist()}]}


def test_rest_and_grpc_over_tls_verified_with_the_ca(tmp_path, exported, pki):
    repo = tmp_path / "repo"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 71), repo, "mlp", "1.0.0")
    rt = start_runtime(repo, tls=server_tls(pki["cert"], pki["key"]), grpc_port=0)
    base = f"https://127.0.0.1:{rt.port}"
    try:
        trusted = ssl.create_default_context(cafile=str(pki["ca"]))
        with httpx.Client(verify=trusted, timeout=30) as c:
            assert c.get(f"{base}/v2/health/ready").status_code == 200  # Starlette route
            r = c.post(f"{base}/v2/models/mlp/infer", json=_body())  # own HTTP/1.1 fast path
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == "1.0.0"
        # a client that does not know the CA refuses the server, and plain HTTP gets nothing
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/v2/health/ready",
                      verify=ssl.create_default_context(cafile=str(pki["other"])))
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{rt.port}/v2/health/ready", timeout=5)

        import tritonclient.grpc as tg

        client = tg.InferenceServerClient(f"127.0.0.1:{rt.grpc.port}", ssl=True,
                                          root_certificates=str(pki["ca"]))
        assert client.is_server_ready()
        x = np.random.default_rng(1).random((2, 16)).astype("float32")
        inp = tg.InferInput("x", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer("mlp", [inp])
        assert result.get_response().model_version == "1.0.0"
        client.close()
    finally:
        rt.stop_thread()


def test_tls_flag_mistakes_are_one_line(tmp_path, pki):
    repo = tmp_path / "repo"
    repo.mkdir()
    cases = [
        (("--tls-cert", pki["cert"]), "--tls-cert and --tls-key go together"),
        (("--tls-cert", pki["cert"], "--tls-key", tmp_path / "missing.key"), "no such file"),
        (("--tls-cert", pki["ca"], "--tls-key", pki["key"]), "is not the private key of"),
        (("--tls-cert", pki["key"], "--tls-key", pki["key"]), "cannot load --tls-cert"),
    ]
    for args, needle in cases:
        proc = subprocess.run(serve_argv(repo, "--port", str(free_port()), *args),
                              capture_output=True, text=True, timeout=120)
        assert_one_line_error(proc, 2, needle)


@pytest.mark.registry
def test_push_and_pull_verify_the_registry_with_registry_ca(tmp_path, exported, pki):
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is not installed (apt-get install docker-registry)")
    repo = tmp_path / "repo"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 71), repo, "mlp", "1.0.0")
    registry = LocalRegistry(tmp_path / "reg", tls=(pki["cert"], pki["key"]))
    registry.start()
    try:
        target = registry.url("models/mlp")
        unknown = cli("push", f"{repo}:mlp@1.0.0", target)
        assert_one_line_error(unknown, 2, "TLS certificate is not trusted")
        assert "--registry-ca" in unknown.stderr
        wrong_ca = cli("push", f"{repo}:mlp@1.0.0", target, "--registry-ca", pki["other"])
        assert_one_line_error(wrong_ca, 2, "TLS certificate is not trusted")
        bad = cli("push", f"{repo}:mlp@1.0.0", target, "--registry-ca", pki["key"])
        assert_one_line_error(bad, 2, "not a PEM CA certificate")
        ok = cli("push", f"{repo}:mlp@1.0.0", target, "--registry-ca", pki["ca"])
        assert ok.returncode == 0, ok.stderr
        box = tmp_path / "box" / "models"  # not there yet: pull creates it, as export does
        pulled = cli("pull", f"{target}:1.0.0", "--repo", box, "--registry-ca", pki["ca"])
        assert pulled.returncode == 0, pulled.stderr
        assert (box / "mlp" / "1.0.0" / "paddlehot.json").is_file()
        # serve --follow --registry-ca: the follower's client trusts the CA as pull did
        from paddlehot_cli.fleet.client import trust_registry_ca

        follower_box = tmp_path / "follower"
        follower_box.mkdir()
        trust_registry_ca(pki["ca"])
        rt = start_runtime(follower_box, follow=[target], follow_interval=0.5)
        try:
            assert rt.manager.loaded_versions("mlp") == ["1.0.0"]
        finally:
            rt.stop_thread()
    finally:
        trust_registry_ca(None)
        registry.stop()
