"""A private Docker daemon for the deploy tests, and the base image it builds on.

``DockerDaemon`` runs Debian's dockerd (tools/install-system-packages.sh,
group ``image``) with its own data root, exec root and socket, and with every
network feature that would touch the host off (no bridge, no iptables, no IP
forwarding or masquerading): containers get ``--network none`` or share
another container's namespace, and builds use the host's network only to
fetch packages. The data root lives in ``.tools/docker`` of the checkout, so a
second run reuses the images and the build cache; a lock keeps a second
daemon off it.

No registry is reachable, so ``ensure_base_image`` makes the Python base the
Dockerfile builds FROM: Debian bookworm (Python 3.11, like the
python:3.11-slim-bookworm default) made with debootstrap, cached as a tar
outside the checkout and imported when the daemon lacks it. The machine's CA
certificates are layered on top, because package downloads here go through a
TLS-intercepting egress whose CA only the machine trusts; the Dockerfile
itself stays as it is.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
DOCKERD = Path("/usr/sbin/dockerd")
DOCKER = Path("/usr/bin/docker")  # Debian's CLI, which speaks to its dockerd with BuildKit built in
DEBOOTSTRAP = Path("/usr/sbin/debootstrap")
DATA_ROOT = REPO / ".tools" / "docker"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "eventstream"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BASE_IMAGE = "eventstream-test/python:3.11-bookworm"


class DockerError(RuntimeError):
    """The daemon did not start, or a docker command failed."""


def missing_tools() -> list[str]:
    """The files of the image group that are not installed."""
    return [str(p) for p in (DOCKERD, DOCKER, DEBOOTSTRAP) if not p.is_file()]


class DockerDaemon:
    """One dockerd, started and stopped by the tests.

    Args:
        data_root: images, containers, volumes and build cache.
    """

    def __init__(self, data_root: Path = DATA_ROOT) -> None:
        self.data_root = data_root
        # A short path: the socket's must fit a sockaddr_un.
        self.run_dir = Path(tempfile.mkdtemp(prefix="es-docker-"))
        self.socket = self.run_dir / "docker.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    def start(self, timeout: float = 120) -> DockerDaemon:
        """Start dockerd and wait until it answers."""
        self.data_root.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.data_root.parent / "docker.lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DockerError(f"another test run uses {self.data_root}") from None
        log = open(self.run_dir / "dockerd.log", "wb")
        self.process = subprocess.Popen(
            [str(DOCKERD), f"--data-root={self.data_root}", f"--exec-root={self.run_dir / 'exec'}",
             f"--host=unix://{self.socket}", f"--pidfile={self.run_dir / 'docker.pid'}",
             "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
             "--ip-forward=false", "--userland-proxy=false", "--log-level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while self.docker("version", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise DockerError(f"dockerd did not start:\n{self.log_tail()}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        """Stop dockerd (it stops its containerd) and release the data root."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the daemon's log."""
        path = self.run_dir / "dockerd.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def docker(self, *args: str, check: bool = True, timeout: float = 60,
               input: bytes | None = None, env: dict[str, str] | None = None,
               stdin: IO[bytes] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this daemon (text output)."""
        command = [str(DOCKER), f"--host=unix://{self.socket}", *args]
        result = subprocess.run(command, capture_output=True, timeout=timeout, input=input, stdin=stdin,
                                env={**os.environ, **(env or {})})
        out = subprocess.CompletedProcess(command, result.returncode,
                                          result.stdout.decode(errors="replace"),
                                          result.stderr.decode(errors="replace"))
        if check and out.returncode != 0:
            raise DockerError(f"docker {' '.join(args[:3])}... failed ({out.returncode}):\n"
                              f"{out.stdout[-3000:]}{out.stderr[-3000:]}")
        return out

    def has_image(self, name: str) -> bool:
        """Whether the daemon holds an image called ``name``."""
        return self.docker("image", "inspect", name, check=False).returncode == 0


def base_rootfs_tar() -> Path:
    """The debootstrap root filesystem as a tar, made once and cached in CACHE_DIR."""
    key = hashlib.sha256(f"{SUITE} {MIRROR} {' '.join(BASE_PACKAGES)}".encode()).hexdigest()[:12]
    tar = CACHE_DIR / f"debootstrap-{SUITE}-{key}.tar"
    if tar.is_file():
        return tar
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=CACHE_DIR))
    root = work / "rootfs"
    try:
        result = subprocess.run(
            [str(DEBOOTSTRAP), "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             SUITE, str(root), MIRROR], capture_output=True, text=True, timeout=1200)
        if result.returncode != 0:
            raise DockerError(f"debootstrap failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        unmount_below(root)  # debootstrap can leave the target's /proc mounted
        # What a slim image leaves out: package lists and caches. The engine
        # provides /proc, /sys and /dev.
        partial = work / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial),
                        "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./dev/*",
                        "--exclude=./var/lib/apt/lists/*", "--exclude=./var/cache/apt/*", "."],
                       check=True, capture_output=True, timeout=600)
        partial.rename(tar)  # atomic: a concurrent or interrupted run never sees half a tar
    finally:
        unmount_below(root)
        shutil.rmtree(work, ignore_errors=True)
    return tar


def unmount_below(directory: Path) -> None:
    """Unmount every file system mounted at or below ``directory``, deepest first."""
    target = str(directory.resolve())
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m == target or m.startswith(target + "/")),
                        key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=True, capture_output=True)


def ensure_base_image(daemon: DockerDaemon) -> str:
    """The base image's name, importing and layering it when the daemon lacks it."""
    if daemon.has_image(BASE_IMAGE):
        return BASE_IMAGE
    raw = f"{BASE_IMAGE}-debootstrap"
    if not daemon.has_image(raw):
        with open(base_rootfs_tar(), "rb") as tar:
            daemon.docker("import", "--change", "CMD [\"python3\"]", "-", raw, stdin=tar, timeout=600)
    with tempfile.TemporaryDirectory(prefix="base-image-") as context:
        shutil.copy(HOST_CA_BUNDLE, Path(context) / "ca-certificates.crt")
        (Path(context) / "Dockerfile").write_text(
            f"FROM {raw}\n"
            "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n")
        daemon.docker("build", "--network=none", "-t", BASE_IMAGE, context, timeout=300,
                      env={"DOCKER_BUILDKIT": "1"})
    return BASE_IMAGE
