"""OCI references, tags and registry credentials (docker config, env vars, credential helpers)."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from paddlehot_cli.fleet import credentials
from paddlehot_cli.fleet.errors import BadReference
from paddlehot_cli.fleet.follower import parse_follow
from paddlehot_cli.fleet.reference import Reference, check_tag, parse_reference


@pytest.mark.parametrize("text, expected", [
    ("oci://reg.local:5000/models/mlp", Reference("reg.local:5000", "models/mlp")),
    ("oci://reg.local/team/vision/resnet:1.2.0", Reference("reg.local", "team/vision/resnet", tag="1.2.0")),
    ("oci://127.0.0.1:5000/models/mlp:stable", Reference("127.0.0.1:5000", "models/mlp", tag="stable")),
    ("oci://reg/models/mlp@^1.2", Reference("reg", "models/mlp", range="^1.2")),
    ("oci://reg/models/mlp@sha256:" + "a" * 64, Reference("reg", "models/mlp", digest="sha256:" + "a" * 64)),
])
def test_references_parse(text, expected):
    assert parse_reference(text) == expected
    assert str(parse_reference(text)) == text


@pytest.mark.parametrize("text, needle", [
    ("reg/models/mlp", "not an OCI reference"),
    ("oci://reg/mlp", "at least NAMESPACE/NAME"),
    ("oci://reg/Models/mlp", "invalid repository path"),
    ("oci://reg:99999/models/mlp", "invalid registry host"),
    ("oci://reg/models/mlp:1.2", "neither a SemVer version nor a label"),
    ("oci://reg/models/mlp:-x", "neither a SemVer version nor a label"),
    ("oci://reg/models/mlp@sha256:abc", "invalid digest"),
    ("oci://reg/models/../mlp", "invalid repository path"),
])
def test_bad_references_say_why(text, needle):
    with pytest.raises(BadReference, match=None) as info:
        parse_reference(text)
    assert needle in info.value.message


def test_follow_takes_ranges_and_labels_not_digests():
    assert parse_follow("oci://reg/models/mlp@>=1.2,<2").range == ">=1.2,<2"
    with pytest.raises(BadReference):
        parse_follow("oci://reg/models/mlp@sha256:" + "b" * 64)
    with pytest.raises(BadReference):
        parse_follow("oci://reg/models/mlp@^x")
    assert check_tag("stable") == "stable" and check_tag("1.0.0") == "1.0.0"


def _config(tmp_path, doc) -> None:
    (tmp_path / "config.json").write_text(json.dumps(doc))


def test_credentials_from_docker_config_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv(credentials.USER_ENV, raising=False)
    auth = base64.b64encode(b"ci-bot:s3cret").decode()
    _config(tmp_path, {"auths": {"reg.local:5000": {"auth": auth},
                                 "https://other.local": {"username": "u", "password": "p"}}})
    got = credentials.lookup("reg.local:5000")
    assert (got.username, got.password) == ("ci-bot", "s3cret")
    assert "s3cret" not in repr(got)
    assert credentials.lookup("other.local").username == "u"
    assert credentials.lookup("unknown.local") is None
    monkeypatch.setenv(credentials.USER_ENV, "env-user")
    monkeypatch.setenv(credentials.PASSWORD_ENV, "env-pass")
    assert credentials.lookup("unknown.local") == credentials.Credentials("env-user", "env-pass")


def test_credentials_from_a_docker_credential_helper(tmp_path, monkeypatch):
    helper = tmp_path / "bin" / "docker-credential-paddletest"
    helper.parent.mkdir()
    # the protocol docker uses: the host on stdin, JSON on stdout, non-zero when unknown
    helper.write_text('#!/bin/sh\nread host\n[ "$host" = "reg.local" ] || exit 1\n'
                      'echo \'{"ServerURL": "reg.local", "Username": "h", "Secret": "tok"}\'\n')
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv(credentials.USER_ENV, raising=False)
    _config(tmp_path, {"credHelpers": {"reg.local": "paddletest"}, "credsStore": "paddletest"})
    assert credentials.lookup("reg.local") == credentials.Credentials("h", "tok")
    assert credentials.lookup("elsewhere.local") is None
