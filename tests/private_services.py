"""A Redis and a RabbitMQ node of a test's own, so it can restart them without disturbing others."""

from __future__ import annotations

import json
import os
import secrets
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


def _wait_for_port(
    port: int, open_: bool, what: str, timeout: float = READY_TIMEOUT_SECONDS
) -> None:
    deadline = time.monotonic() + timeout
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


RABBITMQ_SCRIPTS = Path("/usr/lib/rabbitmq/bin")  # Debian's; /usr/sbin wraps them in `su`
CLUSTER_TIMEOUT_SECONDS = 180.0  # three nodes booting at once on a busy 2-core machine


def _erlang_home(directory: Path) -> Path:
    """A HOME holding an Erlang cookie of its own: the nodes sharing it, and only they, talk.

    RabbitMQ 3.10 reads the cookie from $HOME/.erlang.cookie of the user the node runs as (the
    RABBITMQ_ERLANG_COOKIE variable is deprecated); the node refuses a cookie others can read.
    """
    cookie = directory / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(20))
    cookie.chmod(0o400)
    for path in (directory, cookie):
        shutil.chown(path, "rabbitmq", "rabbitmq")
    return directory


class PrivateRabbitMQ:
    """A RabbitMQ node of its own (name, ports, data directory, Erlang cookie) on this machine.

    It runs as the rabbitmq user with HOME at `erlang_home` (default: its own directory), so
    it never shares a cookie with the machine's broker; nodes of a cluster share one home.
    """

    def __init__(self, directory: Path, erlang_home: Path | None = None) -> None:
        self.port = free_port()
        self._dist_port = free_port()
        self.node = f"sbtest{uuid.uuid4().hex[:8]}@localhost"
        self._directory = directory
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (directory / "enabled_plugins").write_text("[].\n")
        shutil.chown(directory, "rabbitmq", "rabbitmq")
        for child in directory.iterdir():
            shutil.chown(child, "rabbitmq", "rabbitmq")
        self._home = erlang_home or _erlang_home(directory)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        return {
            "HOME": str(self._home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self._dist_port),
            "RABBITMQ_CONFIG_FILE": str(self._directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self._directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self._directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self._directory / "log"),
            "RABBITMQ_PID_FILE": str(self._directory / "pid"),
        }

    def _run(self, script: str, *args: str, timeout: float = 60) -> str:
        """Run a RabbitMQ script as the rabbitmq user, in this node's environment."""
        assignments = [f"{name}={value}" for name, value in self._env().items()]
        command = ["runuser", "-u", "rabbitmq", "--", "env", *assignments]
        completed = subprocess.run(
            [*command, str(RABBITMQ_SCRIPTS / script), *args],
            cwd=self._directory,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return completed.stdout

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """rabbitmqctl against this node."""
        return self._run("rabbitmqctl", "-n", self.node, *args, timeout=timeout)

    def start(self, wait: bool = True) -> None:
        self._run("rabbitmq-server", "-detached")
        if wait:
            self.wait_until_serving()

    def wait_until_serving(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        _wait_for_port(self.port, True, f"private rabbitmq {self.node}", timeout)

    def stop_app(self) -> None:
        """Stop the broker (connections drop, new ones are refused); queues stay on disk."""
        self.ctl("stop_app")
        _wait_for_port(self.port, False, "private rabbitmq")

    def start_app(self) -> None:
        self.ctl("start_app")
        _wait_for_port(self.port, True, "private rabbitmq")

    @property
    def pid(self) -> int | None:
        """The node's Erlang VM (beam.smp), as it wrote it at boot; None before that."""
        try:
            return int((self._directory / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """kill -9 the node's Erlang VM: no goodbye to clients or to the other nodes."""
        pid = self.pid
        assert pid is not None, f"{self.node} wrote no pid file"
        os.kill(pid, signal.SIGKILL)
        _wait_for_port(self.port, False, f"killed rabbitmq {self.node}")

    def shutdown(self) -> None:
        """Stop the node; kill -9 it if it does not stop (a test must not leave one behind)."""
        try:
            self.ctl("stop", timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        pid = self.pid
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class PrivateRabbitCluster:
    """RabbitMQ nodes of a test's own, joined into one cluster, with a cookie of their own."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        home = _erlang_home(directory)
        self.nodes = []
        for index in range(size):
            node_directory = directory / f"node{index + 1}"
            node_directory.mkdir()
            self.nodes.append(PrivateRabbitMQ(node_directory, erlang_home=home))

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(node.url for node in self.nodes)

    def start(self) -> None:
        """Boot every node, then join the others to the first one."""
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_until_serving(CLUSTER_TIMEOUT_SECONDS)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node, timeout=CLUSTER_TIMEOUT_SECONDS)
            node.ctl("start_app", timeout=CLUSTER_TIMEOUT_SECONDS)
            node.wait_until_serving(CLUSTER_TIMEOUT_SECONDS)
        self._wait_for_members(first)

    def _wait_for_members(self, node: PrivateRabbitMQ) -> None:
        wanted = sorted(member.node for member in self.nodes)
        deadline = time.monotonic() + CLUSTER_TIMEOUT_SECONDS
        while True:
            status = json.loads(node.ctl("cluster_status", "--formatter", "json"))
            if sorted(status.get("running_nodes", [])) == wanted:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"cluster never had all of {wanted} running: {status}")
            time.sleep(1)

    def leader_of(self, queue: str) -> PrivateRabbitMQ:
        """The node leading a quorum queue, as a running node of the cluster says."""
        asker = next(node for node in self.nodes if _port_open(node.port))
        rows = json.loads(asker.ctl("list_queues", "name", "leader", "--formatter", "json", "-q"))
        [leader] = [row["leader"] for row in rows if row["name"] == queue]
        return next(node for node in self.nodes if node.node == leader)

    def shutdown(self) -> None:
        for node in self.nodes:
            node.shutdown()


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
