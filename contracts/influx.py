"""A small client for InfluxDB's v1-compatible HTTP API (``/write`` line protocol, ``/query`` InfluxQL).

InfluxDB 1.x, 2.x (compat API) and 3.x all serve these two endpoints, and Grafana's InfluxQL mode
reads the same data, so every component talks to the database through this one class.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests


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
    _session: requests.Session = field(default_factory=requests.Session, init=False, repr=False)

    @classmethod
    def from_env(cls, url: str, database: str, **overrides: Any) -> InfluxClient:
        """Credentials from ``INFLUX_USER``/``INFLUX_PASSWORD`` or ``INFLUX_TOKEN`` (or ``*_FILE``)."""
        creds = {
            "username": secret_from_env("INFLUX_USER"),
            "password": secret_from_env("INFLUX_PASSWORD"),
            "token": secret_from_env("INFLUX_TOKEN"),
        }
        creds.update({k: v for k, v in overrides.items() if v is not None})
        return cls(url=url.rstrip("/"), database=database, **creds)

    def _auth(self) -> dict[str, Any]:
        if self.token:
            return {"headers": {"Authorization": f"Token {self.token}"}}
        if self.username:
            return {"auth": (self.username, self.password or "")}
        return {}

    def write_lines(self, lines: Iterable[str], *, precision: str = "ns") -> None:
        body = "\n".join(lines)
        if not body:
            return
        try:
            resp = self._session.post(
                f"{self.url}/write",
                params={"db": self.database, "precision": precision},
                data=body.encode("utf-8"),
                timeout=self.timeout_s,
                **self._auth(),
            )
        except requests.RequestException as exc:
            raise InfluxError(f"write to {self.url} failed: {exc}", status=None, retryable=True) from exc
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
                resp = self._session.get(
                    f"{self.url}/query", params=params, timeout=self.timeout_s, **self._auth()
                )
            else:
                resp = self._session.post(
                    f"{self.url}/query", data=params, timeout=self.timeout_s, **self._auth()
                )
        except requests.RequestException as exc:
            raise InfluxError(f"query to {self.url} failed: {exc}", status=None, retryable=True) from exc
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

    def create_database(self) -> None:
        # InfluxQL identifiers in double quotes; CREATE DATABASE is idempotent.
        self.query(f'CREATE DATABASE "{self.database}"', epoch=None, method="POST")

    def ping(self) -> bool:
        try:
            return self._session.get(f"{self.url}/ping", timeout=self.timeout_s).status_code == 204
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
