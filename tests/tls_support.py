"""Certificates made by the tests: a private CA (``trustme``), server certificates for the broker and
InfluxDB, one client certificate per user, and the bad ones (another CA's, expired)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme

from footfall.contracts.tls import TlsFiles


@dataclass(frozen=True)
class CertFiles:
    """A certificate (with its chain) and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass
class Pki:
    """A private CA whose certificate lies at ``ca_file``; ``issue`` writes leaf certificates."""

    root: Path
    ca: trustme.CA
    ca_file: Path

    @classmethod
    def create(cls, root: Path, name: str = "ca") -> Pki:
        root.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name=f"footfall test {name}")
        ca_file = root / f"{name}.crt"
        ca.cert_pem.write_to_path(ca_file)
        return cls(root, ca, ca_file)

    def issue(
        self, name: str, *hosts: str, common_name: str | None = None, expired: bool = False
    ) -> CertFiles:
        """A server certificate for ``hosts``, or a client certificate whose CN is ``common_name``
        (the broker takes it as the user name). ``expired``: valid until yesterday."""
        validity = {}
        if expired:
            now = datetime.now(UTC)
            validity = {"not_before": now - timedelta(days=30), "not_after": now - timedelta(days=1)}
        leaf = self.ca.issue_cert(*hosts, common_name=common_name, **validity)
        files = CertFiles(self.root / f"{name}.crt", self.root / f"{name}.key")
        files.cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(files.key)
        files.key.chmod(0o600)
        return files

    def client(self, user: str, *, option: str = "--mqtt", expired: bool = False) -> TlsFiles:
        """Client settings trusting this CA, with a certificate for ``user``."""
        files = self.issue(f"client-{user}{'-expired' if expired else ''}", common_name=user, expired=expired)
        return TlsFiles(ca=self.ca_file, cert=files.cert, key=files.key, option=option)


def tls_args(files: TlsFiles) -> list[str]:
    """The command-line options of ``files``: ``--mqtt-ca X --mqtt-cert Y --mqtt-key Z``."""
    return [arg for name, path in files.options() for arg in (name, str(path))]
