"""A small client for InfluxDB's v1-compatible HTTP API (``/write`` line protocol, ``/query`` InfluxQL).

InfluxDB 1.x, 2.x (compat API) and 3.x all serve these two endpoints, and Grafana's InfluxQL mode
reads the same data, so every component talks to the database through this one class.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from footfall.contracts.tls import TlsFiles


def influxql_string(value: str) -> str:
    """``value`` as an InfluxQL string literal: single-quoted, backslashes and quotes escaped, so
    no value (a store name from the command line, a line name from a config) can change a query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxError(RuntimeError):
    """A request InfluxDB refused or could not answer. ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, status: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def column(self, name: str) -> list[Any]:
        idx = self.columns.index(name)
        return [row[idx] for row in self.values]


@dataclass
class InfluxClient:
    url: str
    database: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    timeout_s: float = 10.0
    # The private CA of an https:// URL (--influx-ca); without it the system's CAs verify the server.
    ca: str | Path | None = None
    _session: requests.Session = field(default_factory=requests.Session, init=False, repr=False)
    _tls: TlsFiles = field(init=False, repr=False)
    _verify: str | bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._tls = TlsFiles(ca=Path(self.ca) if self.ca is not None else None, option="--influx")
        if not self.url.startswith("https://"):
            self._tls.refuse_plain(self.url, "https")
        # Given with every request: requests lets REQUESTS_CA_BUNDLE override a session's ``verify``.
        self._verify = self._tls.verify()

    @classmethod
    def from_env(
        cls,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        ca: str | Path | None = None,
        timeout_s: float = 10.0,
    ) -> InfluxClient:
        """Credentials not given here come from ``INFLUX_USER``/``INFLUX_PASSWORD`` or ``INFLUX_TOKEN``
        (or ``*_FILE``); ``ca=`` the private CA of an https:// URL."""
        return cls(
            url=url.rstrip("/"),
            database=database,
            username=username if username is not None else secret_from_env("INFLUX_USER"),
            password=password if password is not None else secret_from_env("INFLUX_PASSWORD"),
            token=token if token is not None else secret_from_env("INFLUX_TOKEN"),
            ca=ca,
            timeout_s=timeout_s,
        )

    def _auth(self) -> dict[str, Any]:
        """Per-request arguments: credentials, timeout and the CA that verifies the server."""
        common = {"timeout": self.timeout_s, "verify": self._verify}
        if self.token:
            return common | {"headers": {"Authorization": f"Token {self.token}"}}
        if self.username:
            return common | {"auth": (self.username, self.password or "")}
        return common

    def write_lines(self, lines: Iterable[str], *, precision: str = "ns") -> None:
        body = "\n".join(lines)
        if not body:
            return
        try:
            resp = self._session.post(
                f"{self.url}/write",
                params={"db": self.database, "precision": precision},
                data=body.encode("utf-8"),
                **self._auth(),
            )
        except requests.RequestException as exc:
            raise self._unreachable("write", exc) from exc
        if resp.status_code != 204:
            retryable = resp.status_code >= 500 or resp.status_code == 429
            raise InfluxError(
                f"write refused ({resp.status_code}): {resp.text.strip()[:500]}",
                status=resp.status_code,
                retryable=retryable,
            )

    def query(
        self, q: str, *, epoch: str | None = "ns", method: str = "GET", chunk_size: int | None = None
    ) -> list[Series]:
        """Run InfluxQL; return every series of every statement (errors raise ``InfluxError``).

        With ``chunk_size`` the server streams the answer in chunks of that many rows (``chunked=true``;
        faster and leaner for large reads); the parts of a split series are joined again."""
        params = {"db": self.database, "q": q}
        if epoch:
            params["epoch"] = epoch
        if chunk_size:
            params.update(chunked="true", chunk_size=str(chunk_size))
        try:
            if method == "GET":
                resp = self._session.get(f"{self.url}/query", params=params, **self._auth())
            else:
                resp = self._session.post(f"{self.url}/query", data=params, **self._auth())
        except requests.RequestException as exc:
            raise self._unreachable("query", exc) from exc
        if resp.status_code != 200:
            raise InfluxError(
                f"query refused ({resp.status_code}): {resp.text.strip()[:500]}",
                status=resp.status_code,
                retryable=resp.status_code >= 500,
            )
        try:
            bodies = [json.loads(line) for line in resp.iter_lines() if line] if chunk_size else [resp.json()]
        except (ValueError, requests.RequestException) as exc:
            raise InfluxError(
                f"query answer from {self.url} unreadable: {exc}", status=200, retryable=True
            ) from exc
        series: list[Series] = []
        partial = False
        for body in bodies:
            for result in body.get("results", []):
                if "error" in result:
                    raise InfluxError(f"query error: {result['error']}", status=200, retryable=False)
                for s in result.get("series", []):
                    name, tags = s.get("name", ""), s.get("tags") or {}
                    if partial and series and series[-1].name == name and series[-1].tags == tags:
                        series[-1].values.extend(s.get("values", []))
                    else:
                        series.append(Series(name, tags, s.get("columns", []), s.get("values", [])))
                    partial = bool(s.get("partial"))
        return series

    def _unreachable(self, what: str, exc: requests.RequestException) -> InfluxError:
        """No answer: worth retrying. A certificate problem is named in words (it is retried too:
        the operator may be replacing a certificate while events wait)."""
        problem = self._tls.describe(exc, urlsplit(self.url).hostname or self.url, "InfluxDB server")
        detail = f"TLS: {problem}" if problem else str(exc)
        return InfluxError(f"{what} to {self.url} failed: {detail}", status=None, retryable=True)

    def create_database(self) -> None:
        # InfluxQL identifiers in double quotes; CREATE DATABASE is idempotent.
        self.query(f'CREATE DATABASE "{self.database}"', epoch=None, method="POST")

    def ping(self) -> bool:
        try:
            ping = self._session.get(f"{self.url}/ping", timeout=self.timeout_s, verify=self._verify)
            return ping.status_code == 204
        except requests.RequestException:
            return False


def secret_from_env(name: str) -> str | None:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (Docker secrets)."""
    if value := os.environ.get(name):
        return value
    if path := os.environ.get(f"{name}_FILE"):
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    return None
