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
from collections.abc import Callable
from pathlib import Path

import redis

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


class _ServerProcess:
    """One redis-server (data node or Sentinel) of a test's own, stopped or killed by it."""

    def __init__(self, argv: list[str], port: int, what: str) -> None:
        self.port = port
        self._argv = argv
        self._what = what
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for_port(self.port, True, self._what)

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed, connections cut."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(30)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class PrimaryAndReplica:
    """A primary and its replica of a test's own; nothing persisted, both require PASSWORD."""

    PASSWORD = "failover-test-password"

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.primary_port, self.replica_port = free_port(), free_port()
        self._primary = self._server(self.primary_port, "primary")
        self._replica = self._server(self.replica_port, "replica", replica_of=self.primary_port)

    def server_url(self, port: int) -> str:
        """A plain URL of one of the two servers, to use or look at it directly."""
        return f"redis://:{self.PASSWORD}@127.0.0.1:{port}/0"

    def _server(self, port: int, name: str, replica_of: int | None = None) -> _ServerProcess:
        directory = self._directory / name
        directory.mkdir()
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(directory), "--save", "", "--appendonly", "no"]
        argv += ["--requirepass", self.PASSWORD, "--masterauth", self.PASSWORD]
        argv += ["--repl-diskless-sync-delay", "0"]  # a replica in sync at once, not after 5 s
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        return _ServerProcess(argv, port, f"redis {name}")

    def start(self) -> None:
        """Start both; return once the replica is in sync."""
        self._primary.start()
        self._replica.start()
        _wait_until(lambda: self.replication(self.replica_port) == "up", "replica in sync")

    def replication(self, port: int) -> str:
        """'up' or 'down' for a replica's link to its primary, 'master' for a primary."""
        with redis.Redis(port=port, password=self.PASSWORD, socket_timeout=2) as client:
            info = client.info("replication")
        return str(info.get("master_link_status", info["role"]))

    def cut_replication(self) -> None:
        """Stop the replica from receiving the primary's writes, leaving it eligible for promotion.

        A wrong masterauth and a dropped link: the replica keeps failing to log in again, while
        the primary goes on acknowledging writes that the replica will never hold.
        """
        with redis.Redis(port=self.replica_port, password=self.PASSWORD) as replica:
            replica.config_set("masterauth", "not-the-password")
            replica.client_kill_filter(_type="master")
        _wait_until(lambda: self.replication(self.replica_port) == "down", "replication cut")

    def kill_primary(self) -> None:
        self._primary.kill()

    def stop(self) -> None:
        for process in (self._replica, self._primary):
            process.stop()


class RedisWithSentinels(PrimaryAndReplica):
    """A primary and its replica kept by three Sentinels of a test's own, failing over fast.

    The Sentinels (quorum 2) call the primary down after DOWN_AFTER_MS without an answer and
    promote the replica, about 2 seconds after the primary died.
    """

    SERVICE = "sbtest"
    DOWN_AFTER_MS = 1000
    FAILOVER_TIMEOUT_MS = 3000

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self._sentinels = [self._sentinel(index) for index in range(3)]

    @property
    def url(self) -> str:
        """REDIS_URL for the service: the Sentinels, the database, the service name."""
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self._sentinels)
        return f"redis+sentinel://:{self.PASSWORD}@{hosts}/0/{self.SERVICE}"

    def _sentinel(self, index: int) -> _ServerProcess:
        port = free_port()
        directory = self._directory / f"sentinel-{index}"
        directory.mkdir()
        config = directory / "sentinel.conf"  # Sentinel rewrites it: a file of its own
        service = self.SERVICE
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {service} 127.0.0.1 {self.primary_port} 2\n"
            f"sentinel auth-pass {service} {self.PASSWORD}\n"
            f"sentinel down-after-milliseconds {service} {self.DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {service} {self.FAILOVER_TIMEOUT_MS}\n"
        )
        return _ServerProcess(["redis-server", str(config), "--sentinel"], port, "sentinel")

    def start(self) -> None:
        """Start everything; return once every Sentinel knows the replica and the others."""
        super().start()
        for sentinel in self._sentinels:
            sentinel.start()
        _wait_until(self._sentinels_ready, "Sentinels aware of the replica and of each other")

    def _sentinels_ready(self) -> bool:
        for sentinel in self._sentinels:
            with redis.Redis(port=sentinel.port, socket_timeout=2) as client:
                master = client.sentinel_master(self.SERVICE)
                replicas = client.sentinel_slaves(self.SERVICE)
            if master["num-other-sentinels"] < 2 or master["num-slaves"] < 1:
                return False
            if any(r["is_sdown"] or r["port"] != self.replica_port for r in replicas):
                return False
        return True

    def wait_for_promotion(self) -> None:
        """Wait until the Sentinels name the replica as primary and it takes writes."""
        _wait_until(self._replica_promoted, "replica promoted")

    def _replica_promoted(self) -> bool:
        with redis.Redis(port=self._sentinels[0].port, socket_timeout=2) as client:
            address = client.sentinel_get_master_addr_by_name(self.SERVICE)
        promoted = bool(address) and int(address[1]) == self.replica_port
        return promoted and self.replication(self.replica_port) == "master"

    def stop(self) -> None:
        for sentinel in self._sentinels:
            sentinel.stop()
        super().stop()


def _wait_until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {READY_TIMEOUT_SECONDS:.0f}s")
        time.sleep(0.1)
