"""Server certificates from files, reloaded when the files change.

The files are read once at start (a problem stops start-up) and then checked
every ``tls.reload_interval_seconds`` by :meth:`ServerTls.reload`: a change
of a file's identity, size or modification time (cert-manager and
Kubernetes Secret volumes replace files by swapping a symlink) makes it read
them again. A new set is tried out by building an :class:`ssl.SSLContext`
from it, which checks the PEM and that the key belongs to the certificate;
until it passes, the old set stays in use (a certificate and its key written
one after the other are read again at the next check). New connections then
get the new certificate; open connections keep the one they started with.

Users: the gRPC listeners (public and cluster ports) turn
:attr:`ServerTls.material` into grpc's dynamic server credentials
(:func:`grpc_server_credentials`, asked on every new connection); the
cluster port's outbound channels present the same material
(:func:`grpc_channel_credentials`); the TCP listener takes
:meth:`ServerTls.context` for each new connection.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Material:
    """One consistent set of PEM bytes."""

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None
    """CAs for client certificates; None when clients are not asked for one."""
    version: int
    """1 for the first set read, then one more per change taken."""


class TlsFileError(Exception):
    """The certificate files cannot be used (the message names the file and why)."""


_Signature = tuple[tuple[int, int, int, int], ...]


@dataclass(frozen=True)
class TlsFiles:
    """Where a listener's certificate, key and client CAs are.

    Attributes:
        cert_file: PEM certificate chain, leaf first.
        key_file: PEM private key.
        client_ca_file: PEM CAs of client certificates ("" when none are asked for).
        require_client_certificate: clients must present a certificate signed
            by one of ``client_ca_file``'s CAs.
    """

    cert_file: str
    key_file: str
    client_ca_file: str = ""
    require_client_certificate: bool = False

    def paths(self) -> list[str]:
        """Every file, in a fixed order."""
        return [p for p in (self.cert_file, self.key_file, self.client_ca_file) if p]

    def signature(self) -> _Signature:
        """What changes when any file is replaced or rewritten."""
        return file_signature(self.paths())


def file_signature(paths: list[str]) -> _Signature:
    """Device, inode, size and modification time of each file (zeros for a missing one).

    A Secret volume or cert-manager replaces a file by swapping a symlink,
    which changes the inode even when size and time happen to match.
    """
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((0, 0, 0, 0))
            continue
        out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def server_context(material: Material, require_client_certificate: bool) -> ssl.SSLContext:
    """An SSLContext serving ``material`` (TLS 1.2 and up).

    Raises:
        ssl.SSLError: the PEM is not valid, or the key is not the certificate's.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain takes files only: a private temporary directory would
    # leak the key to disk once more, so the PEM goes through memory-backed
    # files of this process (/proc/self/fd of a memfd).
    with _MemoryFile(material.certificate_chain) as cert, _MemoryFile(material.private_key) as key:
        context.load_cert_chain(cert.path, key.path)
    if material.client_ca is not None:
        context.load_verify_locations(cadata=material.client_ca.decode("ascii", "replace"))
        context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    return context


class _MemoryFile:
    """Bytes behind a path that exists only in this process's memory (Linux memfd)."""

    def __init__(self, data: bytes) -> None:
        self._fd = os.memfd_create("eventstream-tls", os.MFD_CLOEXEC)
        os.write(self._fd, data)
        self.path = f"/proc/self/fd/{self._fd}"

    def __enter__(self) -> _MemoryFile:
        return self

    def __exit__(self, *_: object) -> None:
        os.close(self._fd)


class ServerTls:
    """The current certificate of a listener (or several sharing one), and its reloads.

    Args:
        files: where the PEM files are.

    Raises:
        TlsFileError: the files cannot be read or do not make a valid set.
    """

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._signature = files.signature()
        self.material = self._read(1)
        self._context = server_context(self.material, files.require_client_certificate)
        self.reloads = 0
        """Changes taken since start."""
        self.failed_reloads = 0
        """Checks that found changed files it could not use."""

    def _read(self, version: int) -> Material:
        files = self.files
        try:
            chain = Path(files.cert_file).read_bytes()
            key = Path(files.key_file).read_bytes()
            ca = Path(files.client_ca_file).read_bytes() if files.client_ca_file else None
        except OSError as error:
            raise TlsFileError(f"{error.filename}: cannot read: {error.strerror}") from None
        material = Material(chain, key, ca, version)
        try:
            server_context(material, files.require_client_certificate)
        except (ssl.SSLError, ValueError) as error:
            raise TlsFileError(f"{files.cert_file} and {files.key_file}"
                               f"{' and ' + files.client_ca_file if ca is not None else ''}: "
                               f"not a usable certificate, key and CA set: {error}") from None
        return material

    def context(self) -> ssl.SSLContext:
        """The SSLContext for a new connection (with the current certificate)."""
        return self._context

    def reload(self) -> bool:
        """Take the files again if they changed; True when a new set is in use.

        A set that does not load is logged and left for the next check; the
        current one stays.
        """
        signature = self.files.signature()
        if signature == self._signature:
            return False
        try:
            material = self._read(self.material.version + 1)
        except TlsFileError as error:
            self.failed_reloads += 1
            log.error("tls: the changed certificate files are not used (the previous ones "
                      "stay until they are fixed): %s", error)
            self._signature = signature   # try again at the next change
            return False
        self._signature = signature
        self._context = server_context(material, self.files.require_client_certificate)
        self.material = material
        self.reloads += 1
        log.info("tls: new certificate in use for new connections (%s)", self.files.cert_file)
        return True


def _certificate_configuration(material: Material) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.private_key, material.certificate_chain)], material.client_ca)


def grpc_server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    """Server credentials for grpc that follow ``tls``'s reloads.

    grpc asks the fetcher before every new connection's handshake; it hands
    over the set ``tls`` last took, once, so a rotated certificate is served
    to new connections while open ones keep theirs.
    """
    served = tls.material.version

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        # Called by grpc's threads before each handshake: a look at an
        # attribute, and a new configuration only once per reload.
        nonlocal served
        material = tls.material
        if material.version == served:
            return None
        served = material.version
        return _certificate_configuration(material)

    return grpc.dynamic_ssl_server_credentials(
        _certificate_configuration(tls.material),
        fetch,  # type: ignore[arg-type]  # the stub leaves out None, which means "no change"
        require_client_authentication=tls.files.require_client_certificate)


def grpc_channel_credentials(material: Material) -> grpc.ChannelCredentials:
    """Channel credentials for grpc presenting ``material``'s certificate, trusting its CAs."""
    return grpc.ssl_channel_credentials(root_certificates=material.client_ca,
                                        private_key=material.private_key,
                                        certificate_chain=material.certificate_chain)


__all__ = ["Material", "ServerTls", "TlsFileError", "TlsFiles", "file_signature",
           "grpc_channel_credentials", "grpc_server_credentials", "server_context"]
