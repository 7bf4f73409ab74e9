"""Real Mosquitto and InfluxDB processes for the tests: free loopback ports, temporary directories.

Nothing here is a mock: each class spawns the real binary (Debian's ``mosquitto`` and ``influxdb``
packages, installed by ``scripts/test.sh``) and talks to it over TCP.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from footfall.contracts.influx import InfluxClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


@dataclass
class ServerProcess:
    """One server binary run in the foreground, stoppable, killable and restartable in place."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configuration before the first start."""

    def wait_ready(self) -> None:
        wait_for_port(self.port)

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - kept open for the child
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        try:
            self.wait_ready()
        except TimeoutError as exc:
            raise RuntimeError(f"{self.command()[0]} did not start: {self.log_tail()}") from exc

    def stop(self, timeout_s: float = 15.0) -> None:
        """Graceful stop (SIGTERM): the server saves its state."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""


@dataclass(frozen=True)
class ServerTls:
    """PEM files of a TLS server: the CA that signs its clients, its certificate chain and key."""

    ca: Path
    cert: Path
    key: Path


@dataclass
class MosquittoServer(ServerProcess):
    """Mosquitto with a password file, an ACL and on-disk persistence.

    ``users`` maps a user name to (password, ACL lines), e.g.
    ``{"edge-a": ("pw", ["topic write footfall/v1/store-a/#"])}``.
    With ``tls``, a second listener on ``tls_port`` speaks TLS only, requires a client certificate
    signed by ``tls.ca`` and takes its CN as the user name (the same ACL applies), like
    deploy/mosquitto/mosquitto.conf.
    """

    users: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    allow_anonymous: bool = False
    # Tests restart the broker within seconds, so it saves often; deploy/mosquitto/mosquitto.conf: 30.
    autosave_interval_s: int = 1
    tls: ServerTls | None = None
    tls_port: int = field(default_factory=free_port)

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        passwd = self.workdir / "passwd"
        passwd.write_text("")
        for name, (password, _) in self.users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), name, password], check=True)
        acl = []
        for name, (_, rules) in self.users.items():
            acl.append(f"user {name}")
            acl.extend(rules)
            acl.append("")
        (self.workdir / "acl").write_text("\n".join(acl) + "\n")
        (self.workdir / "mosquitto.conf").write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    # When started as root, mosquitto would switch to user "mosquitto", which cannot
                    # read files in a private temporary directory.
                    f"user {getpass.getuser()}",
                    f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
                    f"password_file {passwd}",
                    f"acl_file {self.workdir / 'acl'}",
                    "persistence true",
                    f"persistence_location {self.workdir}/",
                    f"autosave_interval {self.autosave_interval_s}",
                    # Ingest holds messages un-acknowledged until their batch is in InfluxDB, and a
                    # persistent session keeps its backlog while a subscriber is down: lift the
                    # small defaults (20 in flight, 1000 queued) so nothing is dropped by the broker.
                    "max_inflight_messages 0",
                    "max_queued_messages 0",
                    "max_queued_bytes 0",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    f"listener {self.port} 127.0.0.1",
                    *self._tls_listener(),
                    "",
                ]
            )
        )

    def _tls_listener(self) -> list[str]:
        if self.tls is None:
            return []
        return [
            f"listener {self.tls_port} 127.0.0.1",
            f"cafile {self.tls.ca}",
            f"certfile {self.tls.cert}",
            f"keyfile {self.tls.key}",
            "require_certificate true",
            "use_identity_as_username true",
        ]

    def wait_ready(self) -> None:
        super().wait_ready()
        if self.tls is not None:
            wait_for_port(self.tls_port)

    def command(self) -> list[str]:
        return [_binary("mosquitto"), "-c", str(self.workdir / "mosquitto.conf")]

    def start(self) -> None:
        if not (self.workdir / "mosquitto.conf").exists():
            self.prepare()
        super().start()

    def url(self, user: str | None = None) -> str:
        if user is None:
            return f"mqtt://127.0.0.1:{self.port}"
        return f"mqtt://{user}:{self.users[user][0]}@127.0.0.1:{self.port}"

    def tls_url(self, host: str = "127.0.0.1") -> str:
        """The TLS listener; the client certificate's CN is the user."""
        assert self.tls is not None, "started without tls"
        return f"mqtts://{host}:{self.tls_port}"


@dataclass
class InfluxServer(ServerProcess):
    """InfluxDB 1.x with authentication enabled and one admin user; with ``tls``, HTTPS only."""

    admin_user: str = "admin"
    admin_password: str = "admin-secret"
    rpc_port: int = field(default_factory=free_port)
    tls: ServerTls | None = None

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "influxdb.conf").write_text(
            f"""
reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{self.workdir}/meta"
[data]
  dir = "{self.workdir}/data"
  wal-dir = "{self.workdir}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = true
  log-enabled = false
  max-body-size = 0
{self._https()}
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
[logging]
  level = "warn"
"""
        )

    def _https(self) -> str:
        if self.tls is None:
            return ""
        return (
            f'  https-enabled = true\n  https-certificate = "{self.tls.cert}"\n'
            f'  https-private-key = "{self.tls.key}"'
        )

    def command(self) -> list[str]:
        return [_binary("influxd"), "-config", str(self.workdir / "influxdb.conf")]

    @property
    def verify(self) -> str | bool:
        """requests' ``verify=`` for this server: our CA over HTTPS."""
        return str(self.tls.ca) if self.tls is not None else True

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/ping", timeout=0.5, verify=self.verify).status_code == 204:
                    return
            except requests.RequestException:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise TimeoutError("influxd not ready")

    def start(self) -> None:
        first = not (self.workdir / "influxdb.conf").exists()
        if first:
            self.prepare()
        super().start()
        if first:
            # With auth enabled, InfluxDB 1.x accepts exactly one unauthenticated statement:
            # creating the first admin user.
            resp = requests.post(
                f"{self.url}/query",
                data={
                    "q": f"CREATE USER \"{self.admin_user}\" WITH PASSWORD '{self.admin_password}' "
                    "WITH ALL PRIVILEGES"
                },
                timeout=10,
                verify=self.verify,
            )
            resp.raise_for_status()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def client(self, database: str) -> InfluxClient:
        return InfluxClient(
            url=self.url,
            database=database,
            username=self.admin_user,
            password=self.admin_password,
            ca=self.tls.ca if self.tls is not None else None,
        )

    def create_database(self, database: str) -> InfluxClient:
        client = self.client(database)
        client.create_database()
        return client


def _binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(name)


def have_binary(name: str) -> bool:
    try:
        _binary(name)
    except FileNotFoundError:
        return False
    return True
