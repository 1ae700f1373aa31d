"""A small OCI distribution client over httpx: the part of the API paddlehot needs.

Blobs (HEAD, monolithic upload, GET verified against its digest while it streams), manifests
(PUT, GET size-capped and digest-checked), tags (paginated list). Auth: anonymous, Basic, or the
Bearer token flow of the distribution spec, with credentials from `credentials.lookup`.
Every network failure becomes a RegistryUnreachable (retry later), every unexpected answer a
RegistryHTTPError, every content that does not hash to its digest a DigestMismatch.
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin

import httpx

from paddlehot_cli import __version__
from paddlehot_cli.errors import UserError
from paddlehot_cli.fleet import credentials as creds
from paddlehot_cli.fleet.errors import (
    DigestMismatch,
    FleetError,
    RegistryHTTPError,
    RegistryUnreachable,
    SizeMismatch,
    TooLarge,
)
from paddlehot_cli.fleet.media import ACCEPT

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # what the distribution registry itself accepts
CHUNK = 1 << 20
Progress = Callable[[int], None]  # bytes just moved
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')
_LINK_RE = re.compile(r"<([^>]+)>\s*;\s*rel=\"?next\"?")


_registry_tls: ssl.SSLContext | None = None  # --registry-ca; None: the system's CAs


def trust_registry_ca(ca: Path | None) -> None:
    """`--registry-ca FILE` (push, pull, serve --follow): verify every registry's certificate
    against this CA bundle (PEM) instead of the system's; the host name is checked as always."""
    global _registry_tls
    if ca is None:
        _registry_tls = None
        return
    try:
        _registry_tls = ssl.create_default_context(cafile=str(ca))
    except FileNotFoundError:
        raise UserError(f"--registry-ca {ca}: no such file") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise UserError(f"--registry-ca {ca}: not a PEM CA certificate ({exc})") from None


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryClient:
    def __init__(self, registry: str, *, insecure: bool = False, timeout: float = 30.0,
                 credentials: creds.Credentials | None = None):
        self.registry = registry
        self.insecure = insecure
        self.base = f"{'http' if insecure else 'https'}://{registry}"
        self._credentials = credentials
        self._looked_up = credentials is not None
        self._tokens: dict[str, str] = {}  # scope -> bearer token
        self._basic = False
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                 follow_redirects=True, verify=_registry_tls or True,
                                 headers={"User-Agent": f"paddlehot/{__version__}"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport and auth ----------------------------------------------------------------

    def _creds(self) -> creds.Credentials | None:
        if not self._looked_up:
            self._credentials = creds.lookup(self.registry)
            self._looked_up = True
        return self._credentials

    def _auth_headers(self, scope: str) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        c = self._creds()
        if self._basic and c is not None:
            pair = f"{c.username}:{c.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}

    def _authenticate(self, challenge: str, scope: str) -> bool:
        """Answer a 401 challenge; False when there is nothing more we could send."""
        kind = challenge.split(" ", 1)[0].lower()
        params = dict(_CHALLENGE_RE.findall(challenge))
        c = self._creds()
        if kind == "basic":
            if c is None or self._basic:
                return False
            self._basic = True
            return True
        if kind != "bearer" or "realm" not in params or scope in self._tokens:
            return False
        query = {"service": params.get("service", ""), "scope": params.get("scope", scope)}
        try:
            if c is not None and c.identity_token:
                resp = self.http.post(params["realm"], data={
                    "grant_type": "refresh_token", "refresh_token": c.identity_token,
                    "client_id": "paddlehot", **query})
            else:
                auth = httpx.BasicAuth(c.username, c.password) if c is not None else None
                resp = self.http.get(params["realm"], params=query, auth=auth)
        except httpx.HTTPError as exc:
            raise RegistryUnreachable(f"token service {params['realm']}: {exc}") from None
        if resp.status_code != 200:
            return False
        try:
            doc = resp.json()
        except ValueError:
            return False
        token = doc.get("token") or doc.get("access_token")
        if not token:
            return False
        self._tokens[scope] = token
        return True

    def _unreachable(self, exc: Exception) -> FleetError:
        text = str(exc) or type(exc).__name__
        if "CERTIFICATE_VERIFY_FAILED" in text:  # unknown CA, wrong host name, expired
            why = text.split("certificate verify failed:", 1)[-1].split("(_ssl")[0].strip()
            return RegistryUnreachable(
                f"registry {self.registry}: its TLS certificate is not trusted ({why})",
                hint="pass --registry-ca FILE with the CA that signed it"
                     + ("" if _registry_tls is None else ", and check the host name"))
        if not self.insecure and ("SSL" in text or "TLS" in text or "record" in text):
            return RegistryUnreachable(
                f"registry {self.registry} did not complete a TLS handshake ({text})",
                hint="for a plain-HTTP registry (a test one on 127.0.0.1) pass --insecure")
        return RegistryUnreachable(f"cannot reach registry {self.registry}: {text}")

    @contextmanager
    def _send(self, method: str, url: str, scope: str, ok: tuple[int, ...], *,
              headers: dict | None = None, body: Callable[[], object] | None = None,
              what: str = "") -> Iterator[httpx.Response]:
        """Send (streaming the answer), answering one auth challenge; yield an `ok` response."""
        url = url if url.startswith(("http://", "https://")) else self.base + url
        for attempt in range(2):
            hdrs = {**(headers or {}), **self._auth_headers(scope)}
            content = body() if body is not None else None
            try:
                req = self.http.build_request(method, url, headers=hdrs, content=content)
                resp = self.http.send(req, stream=True)
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from None
            if resp.status_code == 401 and attempt == 0 and self._authenticate(
                    resp.headers.get("WWW-Authenticate", ""), scope):
                resp.close()
                continue
            try:
                if resp.status_code not in ok:
                    raise self._http_error(resp, method, what or url)
                yield resp
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from None
            finally:
                resp.close()
            return

    def _http_error(self, resp: httpx.Response, method: str, what: str) -> RegistryHTTPError:
        detail = ""
        try:
            resp.read()
            errors = resp.json().get("errors") or []
            if errors:
                detail = f": {errors[0].get('code', '')} {errors[0].get('message', '')}".rstrip()
        except (ValueError, AttributeError, httpx.HTTPError):
            pass
        status = resp.status_code
        hint = None
        if status in (401, 403):
            hint = (f"log in with `docker login {self.registry}` or set "
                    f"{creds.USER_ENV}/{creds.PASSWORD_ENV}")
        return RegistryHTTPError(f"registry {self.registry}: {method} {what} answered {status}"
                                 f"{detail}", status, hint=hint)

    # -- the API ---------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that HOST speaks the distribution API (GET /v2/ answers 200 or 401)."""
        try:
            with self._send("GET", "/v2/", "", (200,), what="/v2/"):
                return
        except RegistryHTTPError as exc:
            if exc.status == 401:
                return  # a registry that wants credentials for everything: later calls will say
            raise RegistryHTTPError(
                f"{self.registry} is not an OCI registry (GET /v2/ answered {exc.status})",
                exc.status) from None

    def list_tags(self, repository: str, max_pages: int = 100) -> list[str]:
        scope = f"repository:{repository}:pull"
        url: str | None = f"/v2/{repository}/tags/list?n=1000"
        tags: list[str] = []
        for _ in range(max_pages):
            if url is None:
                break
            with self._send("GET", url, scope, (200,), what=f"tags of {repository}") as resp:
                doc = _json(resp.read(), f"tag list of {repository}")
                link = _LINK_RE.search(resp.headers.get("Link", ""))
            tags.extend(t for t in (doc.get("tags") or []) if isinstance(t, str))
            url = urljoin(self.base + "/", link[1]) if link else None
        return tags

    def get_manifest(self, repository: str, ref: str,
                     limit: int = MAX_MANIFEST_BYTES) -> tuple[str, bytes, str]:
        """(media type, body, digest) of a manifest or index by tag or digest, size-capped."""
        with self._send("GET", f"/v2/{repository}/manifests/{ref}", f"repository:{repository}:pull",
                        (200,), headers={"Accept": ACCEPT}, what=f"manifest {repository}:{ref}") as resp:
            body = _read_capped(resp, limit, f"manifest {repository}:{ref}")
            media = resp.headers.get("Content-Type", "").split(";")[0].strip()
            claimed = resp.headers.get("Docker-Content-Digest")
        digest = sha256_digest(body)
        expected = ref if ref.startswith("sha256:") else claimed
        if expected and expected != digest:
            raise DigestMismatch(f"manifest {repository}:{ref} from {self.registry} hashes to "
                                 f"{digest}, not {expected}: refused")
        return media, body, digest

    def put_manifest(self, repository: str, ref: str, body: bytes, media_type: str) -> str:
        with self._send("PUT", f"/v2/{repository}/manifests/{ref}",
                        f"repository:{repository}:pull,push", (201,),
                        headers={"Content-Type": media_type}, body=lambda: body,
                        what=f"manifest {repository}:{ref}"):
            pass
        return sha256_digest(body)

    def blob_exists(self, repository: str, digest: str) -> bool:
        try:
            with self._send("HEAD", f"/v2/{repository}/blobs/{digest}",
                            f"repository:{repository}:pull,push", (200,), what=f"blob {digest}"):
                return True
        except RegistryHTTPError as exc:
            if exc.status == 404:
                return False
            raise

    def upload_blob(self, repository: str, digest: str, size: int,
                    source: Path | bytes, progress: Progress | None = None) -> None:
        """Monolithic upload (POST, then PUT ?digest=) streaming from a file or bytes."""
        scope = f"repository:{repository}:pull,push"
        with self._send("POST", f"/v2/{repository}/blobs/uploads/", scope, (202,),
                        what=f"upload to {repository}") as resp:
            location = resp.headers.get("Location")
        if not location:
            raise RegistryHTTPError(f"registry {self.registry} gave no upload location", 502)
        url = urljoin(self.base + "/", location)
        url += ("&" if "?" in url else "?") + f"digest={digest}"

        def body() -> object:
            return source if isinstance(source, bytes) else _file_chunks(source, progress)

        with self._send("PUT", url, scope, (201,), body=body, what=f"blob {digest[:19]}",
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Length": str(size)}):
            pass
        if isinstance(source, bytes) and progress is not None:
            progress(size)

    def fetch_blob(self, repository: str, digest: str, size: int, out: BinaryIO,
                   progress: Progress | None = None, what: str = "") -> int:
        """Stream a blob into `out`, hashing as it goes; refuse it unless it is exactly
        `size` bytes hashing to `digest`. Returns the bytes downloaded."""
        label = what or digest[:19]
        h = hashlib.sha256()
        got = 0
        with self._send("GET", f"/v2/{repository}/blobs/{digest}", f"repository:{repository}:pull",
                        (200,), what=f"blob {label}") as resp:
            for chunk in resp.iter_bytes(CHUNK):
                got += len(chunk)
                if got > size:
                    raise SizeMismatch(f"layer {label} from {self.registry} is larger than its "
                                       f"descriptor size ({size} bytes): refused")
                h.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(len(chunk))
        if got < size:
            raise SizeMismatch(f"layer {label} from {self.registry} is smaller than its "
                               f"descriptor size ({got} of {size} bytes): refused")
        actual = "sha256:" + h.hexdigest()
        if actual != digest:
            raise DigestMismatch(f"layer {label} from {self.registry}: digest mismatch (the "
                                 f"{got} bytes hash to {actual}, the descriptor says {digest}): "
                                 "refused")
        return got

    def fetch_blob_bytes(self, repository: str, digest: str, size: int, limit: int,
                         what: str = "") -> bytes:
        if size > limit:
            raise TooLarge(f"{what or digest} is {size} bytes, more than the {limit} allowed")
        import io

        buf = io.BytesIO()
        self.fetch_blob(repository, digest, size, buf, what=what)
        return buf.getvalue()


def _file_chunks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            if progress is not None:
                progress(len(block))
            yield block


def _read_capped(resp: httpx.Response, limit: int, what: str) -> bytes:
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise TooLarge(f"{what} is {length} bytes, more than the {limit} allowed: refused")
    data = bytearray()
    for chunk in resp.iter_bytes(CHUNK):
        data += chunk
        if len(data) > limit:
            raise TooLarge(f"{what} is larger than the {limit} bytes allowed: refused")
    return bytes(data)


def _json(body: bytes, what: str) -> dict:
    import json

    try:
        doc = json.loads(body)
    except ValueError:
        raise RegistryHTTPError(f"{what} is not JSON", 502) from None
    if not isinstance(doc, dict):
        raise RegistryHTTPError(f"{what} is not a JSON object", 502)
    return doc
