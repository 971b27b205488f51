"""A Redis and a RabbitMQ node of a test's own, so it can restart them without disturbing others."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from tests.certs import SelfSigned
from tests.processes import free_port

READY_TIMEOUT_SECONDS = 60.0


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, open_: bool, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while _port_open(port) != open_:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: port {port} not {'open' if open_ else 'closed'}")
        time.sleep(0.1)


class PrivateRedis:
    """redis-server on a free port that writes every change to its append-only file."""

    def __init__(self, directory: Path, tls: SelfSigned | None = None) -> None:
        self.port = free_port()
        self._directory = directory
        self._tls = tls
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self._tls is None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self._tls.cert_file}"

    def _listen_options(self) -> list[str]:
        if self._tls is None:
            return ["--port", str(self.port)]
        return [
            "--port",
            "0",
            "--tls-port",
            str(self.port),
            "--tls-auth-clients",
            "no",
            "--tls-cert-file",
            str(self._tls.cert_file),
            "--tls-key-file",
            str(self._tls.key_file),
            "--tls-ca-cert-file",
            str(self._tls.cert_file),
        ]

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                *self._listen_options(),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self._directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, True, "private redis")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): the append-only file keeps every acknowledged write."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(30)
        _wait_for_port(self.port, False, "private redis")


class PrivateRabbitMQ:
    """A RabbitMQ node of its own (name, ports, data directory) on this machine."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self._dist_port = free_port()
        self.node = f"sbtest{uuid.uuid4().hex[:8]}@localhost"
        self._directory = directory
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (directory / "enabled_plugins").write_text("[].\n")
        shutil.chown(directory, "rabbitmq", "rabbitmq")
        for child in directory.iterdir():
            shutil.chown(child, "rabbitmq", "rabbitmq")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        import os

        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self._dist_port),
            "RABBITMQ_CONFIG_FILE": str(self._directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self._directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self._directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self._directory / "log"),
            "RABBITMQ_PID_FILE": str(self._directory / "pid"),
        }

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, *args],
            env=self._env(),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        subprocess.run(
            ["rabbitmq-server", "-detached"], env=self._env(), check=True, capture_output=True
        )
        _wait_for_port(self.port, True, "private rabbitmq")

    def stop_app(self) -> None:
        """Stop the broker (connections drop, new ones are refused); queues stay on disk."""
        self._ctl("stop_app")
        _wait_for_port(self.port, False, "private rabbitmq")

    def start_app(self) -> None:
        self._ctl("start_app")
        _wait_for_port(self.port, True, "private rabbitmq")

    def shutdown(self) -> None:
        try:
            self._ctl("stop")
        except subprocess.CalledProcessError:
            pass


class PrivatePostgres:
    """A PostgreSQL server of its own (data directory, port), run as the postgres user."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self._directory = directory
        self._bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        shutil.chown(directory, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def initialise(self) -> None:
        self._as_postgres(
            str(self._bin / "initdb"),
            "-D",
            str(self._directory / "data"),
            "--auth=trust",
            "-U",
            "postgres",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self._directory} -c listen_addresses=127.0.0.1"
        self._as_postgres(
            str(self._bin / "pg_ctl"),
            "-D",
            str(self._directory / "data"),
            "-o",
            options,
            "-l",
            str(self._directory / "log"),
            "-w",
            "start",
        )
        _wait_for_port(self.port, True, "private postgres")

    def stop(self) -> None:
        """A fast shutdown: sessions are cut, committed transactions stay."""
        self._as_postgres(
            str(self._bin / "pg_ctl"),
            "-D",
            str(self._directory / "data"),
            "-m",
            "fast",
            "-w",
            "stop",
        )
        _wait_for_port(self.port, False, "private postgres")
