"""`serve --tls-cert FILE --tls-key FILE`: HTTPS for REST and TLS for gRPC, one certificate.

The pair is loaded once at start-up into an ssl context, so a missing file, a file that is not
PEM or a key that does not belong to the certificate is one `error:` line before anything
listens. REST (uvicorn with paddlehot's own HTTP protocol on top of asyncio's TLS transport)
and gRPC (grpc.ssl_server_credentials) serve the same pair.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from paddlehot_cli.errors import UserError


@dataclass(frozen=True)
class ServerTls:
    cert: Path
    key: Path

    def credentials(self) -> tuple[bytes, bytes]:
        """(private key, certificate chain) as PEM bytes, what gRPC's credentials take."""
        return self.key.read_bytes(), self.cert.read_bytes()


def server_tls(cert: Path | None, key: Path | None) -> ServerTls | None:
    """Check a certificate/key pair as given on the command line; None when neither is."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UserError("--tls-cert and --tls-key go together",
                        hint="give both: the certificate (PEM, chain first) and its private key")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise UserError(f"{flag} {path}: no such file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key))
    except PermissionError as exc:
        raise UserError(f"cannot read {exc.filename}: permission denied") from None
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        if reason == "KEY_VALUES_MISMATCH":
            raise UserError(f"--tls-key {key} is not the private key of --tls-cert {cert}") \
                from None
        raise UserError(f"cannot load --tls-cert {cert} / --tls-key {key}: {reason}",
                        hint="both must be PEM files; an encrypted key is not supported") from None
    return ServerTls(Path(cert), Path(key))
