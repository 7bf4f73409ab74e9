"""TLS for every connection footfall opens: MQTT (paho) and HTTP (InfluxDB, Grafana).

One place turns the ``--mqtt-ca/--mqtt-cert/--mqtt-key``, ``--influx-ca`` and ``--grafana-ca`` files
into verification settings, and one place turns a failed handshake into a sentence that names the
certificate problem. Verification is always on: the server's certificate must chain to the given CA
(else the system's CAs) and carry the host name that was dialled. Nothing here can switch that off.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("footfall.tls")

# OpenSSL verify codes (X509_V_ERR_*) of the server's certificate, in words.
_VERIFY_PROBLEMS = {
    9: "the {server}'s certificate is not valid yet",
    10: "the {server}'s certificate has expired",
    18: "the {server}'s certificate is self-signed and not trusted ({ca})",
    19: "the {server}'s certificate chain ends in a CA that is not trusted ({ca})",
    20: "the {server}'s certificate is not signed by a trusted CA ({ca})",
    21: "the {server}'s certificate is not signed by a trusted CA ({ca})",
    62: "hostname mismatch: the {server}'s certificate is not valid for {host}",
    64: "hostname mismatch: the {server}'s certificate is not valid for {host}",
}
# TLS alerts the server sends when it refuses our client certificate (OpenSSL reason codes).
_ALERT_PROBLEMS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the {server} requires a client certificate: none given ({cert})",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the {server} refused the handshake (no client certificate? {cert})",
    "TLSV1_ALERT_UNKNOWN_CA": "the {server} does not trust the CA that issued this client's certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the {server} refused this client's certificate: it has expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "the {server} refused this client's certificate: it is revoked",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the {server} refused this client's certificate (bad certificate)",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "the {server} refused this client's certificate (unsupported)",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the {server} refused this client's certificate (unknown)",
}


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of one kind of connection. ``option`` is the prefix of their CLI options
    (``--mqtt`` -> ``--mqtt-ca``), so that every message names what to fix."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    option: str = "--mqtt"

    def __post_init__(self) -> None:
        from footfall.contracts.config import ConfigError  # config imports this module

        if (self.cert is None) != (self.key is None):
            given, missing = ("cert", "key") if self.key is None else ("key", "cert")
            raise ConfigError(f"{self.option}-{given}: needs {self.option}-{missing} too")

    @property
    def given(self) -> bool:
        return bool(self.options())

    def context(self, host: str, server: str = "server") -> ssl.SSLContext:
        """A client context that verifies ``host`` and reports a failed handshake once, plainly.
        Unreadable or mismatched files raise ``ConfigError`` naming the option and the file."""
        from footfall.contracts.config import ConfigError

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, hostname checked, TLS >= 1.2
        try:
            if self.ca is not None:
                context.load_verify_locations(cafile=self.ca)
            else:
                context.load_default_certs()
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{self.option}-ca: {self.ca}: not a readable PEM CA file ({_why(exc)})"
            ) from None
        if self.cert is not None:
            try:
                context.load_cert_chain(self.cert, self.key)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"{self.option}-cert / {self.option}-key: {self.cert}, {self.key}: "
                    f"not a readable PEM certificate and matching key ({_why(exc)})"
                ) from None
        context.sslsocket_class = _ReportingSocket
        context.footfall_report = TlsProblemLog(self, host, server)  # type: ignore[attr-defined]
        return context

    def verify(self) -> str | bool:
        """``verify=`` for requests / niquests: our CA file, else the system's CAs (never False)."""
        from footfall.contracts.config import ConfigError

        if self.ca is not None and not self.ca.is_file():
            raise ConfigError(f"{self.option}-ca: {self.ca}: no such file")
        return str(self.ca) if self.ca is not None else True

    def options(self) -> list[tuple[str, Path]]:
        """(option name, file) of the files given, e.g. ``("--mqtt-ca", Path("ca.crt"))``."""
        files = (("ca", self.ca), ("cert", self.cert), ("key", self.key))
        return [(f"{self.option}-{kind}", path) for kind, path in files if path is not None]

    def refuse_plain(self, url: str, scheme: str) -> None:
        """Called for a URL without TLS: certificate files given for it are a mistake, not a hint to
        go plain silently."""
        from footfall.contracts.config import ConfigError

        if self.given:
            given = ", ".join(name for name, _ in self.options())
            raise ConfigError(f"{self.option}-url: {url!r} is not {scheme}://; {given} need {scheme}://")

    def ca_pem(self, url: str) -> str | None:
        """The CA file's text, for a server that verifies ``url`` on our behalf (Grafana's datasource)."""
        if self.ca is None:
            return None
        if not url.startswith("https://"):
            self.refuse_plain(url, "https")
        self.context(urlsplit(url).hostname or url)  # a readable PEM CA, or a ConfigError naming it
        return self.ca.read_text(encoding="utf-8")

    def describe(self, exc: BaseException, host: str, server: str = "server") -> str | None:
        """The certificate problem behind ``exc`` (or anything it wraps) in words; ``None`` if it
        is not a TLS failure."""
        for err in _chain(exc):
            if isinstance(err, ssl.SSLCertVerificationError):
                template = _VERIFY_PROBLEMS.get(err.verify_code, "the {server}'s certificate was refused")
                return f"{self._fill(template, host, server)} ({err.verify_message})"
            if isinstance(err, ssl.SSLError) and not isinstance(
                err, ssl.SSLWantReadError | ssl.SSLWantWriteError
            ):
                template = _ALERT_PROBLEMS.get(err.reason or "", "TLS failed with the {server}")
                return f"{self._fill(template, host, server)} ({err.reason or err})"
        return None

    def _fill(self, template: str, host: str, server: str) -> str:
        ca = f"{self.option}-ca {self.ca}" if self.ca else f"the system's CAs; give {self.option}-ca"
        cert = (
            f"{self.option}-cert {self.cert}"
            if self.cert
            else f"give {self.option}-cert and {self.option}-key"
        )
        return template.format(server=server, host=host, ca=ca, cert=cert)


class TlsProblemLog:
    """Logs a TLS failure once per distinct problem, as an error (a client retrying every few
    seconds would otherwise repeat it forever; repeats go to DEBUG), and says when TLS works again."""

    def __init__(self, files: TlsFiles, host: str, server: str) -> None:
        self.files, self.host, self.server = files, host, server
        self.last: str | None = None
        self.repeats = 0
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        problem = self.files.describe(exc, self.host, self.server) or str(exc)
        with self._lock:
            repeated = problem == self.last
            self.last = problem
            self.repeats = self.repeats + 1 if repeated else 0
        if repeated:
            log.debug(
                "TLS to the %s at %s failed again (%d repeats): %s",
                self.server,
                self.host,
                self.repeats,
                problem,
            )
        else:
            log.error(
                "TLS to the %s at %s failed: %s; retrying with back-off", self.server, self.host, problem
            )

    def worked(self) -> None:
        with self._lock:
            was_failing, self.last, self.repeats = self.last is not None, None, 0
        if was_failing:
            log.info("TLS to the %s at %s works again", self.server, self.host)


# A non-blocking read that must wait is no failure; nor is a connection closed (e.g. the broker
# restarting) once the server has accepted us.
_WAIT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)
_CLOSED = (ssl.SSLZeroReturnError, ssl.SSLEOFError)


class _ReportingSocket(ssl.SSLSocket):
    """An SSL socket that tells its context's ``TlsProblemLog`` about a failed handshake. Under
    TLS 1.3 the server judges our client certificate after our side of the handshake is done, so
    its refusal (an alert) arrives with the first read: reads report too."""

    _proven = False

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except ssl.SSLError as exc:
            _report(self).failed(exc)
            raise

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            data = super().recv(buflen, flags)
        except _WAIT:
            raise
        except ssl.SSLError as exc:
            if not (self._proven and isinstance(exc, _CLOSED)):
                _report(self).failed(exc)
            raise
        if data and not self._proven:
            # The server answered through TLS: it accepted us.
            self._proven = True
            _report(self).worked()
        return data


def _report(sock: ssl.SSLSocket) -> TlsProblemLog:
    return sock.context.footfall_report  # type: ignore[attr-defined,no-any-return]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (causes, contexts, exceptions among its args, ``reason``)."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        err = todo.pop(0)
        if not isinstance(err, BaseException) or id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        todo += [err.__cause__, err.__context__, getattr(err, "reason", None), *err.args]


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
