"""Run server.py and worker.py as real processes for end-to-end tests, and always stop them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis

from scoreboard.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.05
WORKER_READY_MARKER = "worker consuming"
EVERY_INTERFACE = ("", "0.0.0.0", "::")  # HOST values that bind every interface
# Everything that makes server.py choose the distributed mode or a fixed secret.
BACKEND_VARIABLES = ("REDIS_URL", "RABBITMQ_URL", "CLOUDAMQP_URL", "JWT_SECRET")

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ProcessFailed(AssertionError):
    """A process exited early or was not ready in time; the message carries its output."""


@dataclass(frozen=True)
class Finished:
    """How a process ended and what it printed (stderr apart only when it had its own file)."""

    name: str
    returncode: int
    output: str
    errors: str = ""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_env(overrides: Mapping[str, str], remove: Iterable[str] = ()) -> dict[str, str]:
    """os.environ without `remove`, plus `overrides`, with unbuffered Python output."""
    removed = set(remove)
    env = {name: value for name, value in os.environ.items() if name not in removed}
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_to_exit(
    script: str, env: Mapping[str, str], remove: Iterable[str] = (), timeout: float = 20.0
) -> Finished:
    """Run a script that is expected to exit by itself; its output is stdout and stderr merged."""
    completed = subprocess.run(
        [sys.executable, script],
        cwd=PROJECT_ROOT,
        env=process_env(env, remove),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Finished(script, completed.returncode, completed.stdout)


class ServiceProcess:
    """A running program printing to `log_path`, and stderr to `stderr_path` when given."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        stderr_path: Path | None = None,
        cwd: Path = PROJECT_ROOT,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.stderr_path = stderr_path
        with ExitStack() as files:
            out = files.enter_context(log_path.open("wb"))
            err: IO[bytes] | int = subprocess.STDOUT
            if stderr_path is not None:
                err = files.enter_context(stderr_path.open("wb"))
            self._popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def output(self) -> str:
        """What the process printed so far (stdout, with stderr unless it has its own file)."""
        return self.log_path.read_text(errors="replace")

    @property
    def errors(self) -> str:
        """What the process printed to its own stderr file so far."""
        return "" if self.stderr_path is None else self.stderr_path.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        """Poll `ready` until true; raise ProcessFailed if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self._popen.poll() is not None:
                problem = f"exited with {self._popen.returncode} before {what}"
                raise ProcessFailed(self._report(problem))
            if time.monotonic() > deadline:
                raise ProcessFailed(self._report(f"not {what} after {timeout:.0f}s"))
            time.sleep(POLL_SECONDS)

    def wait_for_output(self, marker: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Wait until the process has printed `marker`."""
        self.wait_until(lambda: marker in self.output, f"printing {marker!r}", timeout)

    def wait(self, timeout: float) -> Finished:
        """Wait for the process to exit by itself; raise ProcessFailed after `timeout`."""
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ProcessFailed(self._report(f"still running after {timeout:.0f}s")) from None
        return self._finished()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> Finished:
        """SIGTERM, then SIGKILL after `timeout`; return the exit code and the whole output."""
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        return self._finished()

    def kill(self) -> Finished:
        """SIGKILL: the process ends at once, as when its machine goes away."""
        self._popen.kill()
        self._popen.wait()
        return self._finished()

    def _finished(self) -> Finished:
        return Finished(self.name, self._popen.returncode, self.output, self.errors)

    def _report(self, problem: str) -> str:
        report = f"{self.name} (pid {self.pid}) {problem}; its output:\n{self.output}"
        return report + (f"\nits stderr:\n{self.errors}" if self.stderr_path else "")


class WebProcess(ServiceProcess):
    """server.py (or `argv`) listening on `port` (of HOST when it names one address, else of
    loopback)."""

    def __init__(
        self,
        name: str,
        env: Mapping[str, str],
        log_path: Path,
        argv: Sequence[str] = (sys.executable, "server.py"),
        cwd: Path = PROJECT_ROOT,
    ) -> None:
        self.port = int(env["PORT"])
        self.ops_port = int(env["OPS_PORT"]) if env.get("OPS_PORT") else None
        host = env.get("HOST", "")
        self.host = "127.0.0.1" if host in EVERY_INTERFACE else host
        super().__init__(name, argv, env, log_path, cwd=cwd)

    @property
    def url(self) -> str:
        return self.url_at(self.port)

    def url_at(self, port: int) -> str:
        """The URL of this node's address at `port` (its OPS_PORT, say)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    def wait_until_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Wait until GET /healthz answers 200."""
        self.wait_until(self._healthy, "answering /healthz", timeout)

    def _healthy(self) -> bool:
        # On OPS_PORT when set: that port is this process's own, PORT may be shared (REUSE_PORT).
        try:
            url = self.url_at(self.ops_port or self.port)
            with _NO_PROXY.open(f"{url}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False


class Processes:
    """Starts the service's processes for one test; `stop_all` (or leaving `with`) ends them all."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._running: list[ServiceProcess] = []
        self._started: Counter[str] = Counter()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def start_web(
        self,
        env: Mapping[str, str],
        remove: Iterable[str] = (),
        timeout: float = START_TIMEOUT_SECONDS,
        port: int | None = None,
    ) -> WebProcess:
        """Start server.py on `port` (default: a free one) and wait until /healthz answers."""
        name = self._next_name("web")
        full_env = process_env({**env, "PORT": str(port or free_port())}, remove)
        web = WebProcess(name, full_env, self._log_dir / f"{name}.log")
        self._running.append(web)
        web.wait_until_healthy(timeout)
        return web

    def start_worker(
        self, env: Mapping[str, str], timeout: float = START_TIMEOUT_SECONDS
    ) -> ServiceProcess:
        """Start worker.py and wait until it logs that it consumes the queue."""
        name = self._next_name("worker")
        argv = [sys.executable, "worker.py"]
        worker = ServiceProcess(name, argv, process_env(env), self._log_dir / f"{name}.log")
        self._running.append(worker)
        worker.wait_for_output(WORKER_READY_MARKER, timeout)
        return worker

    def start_distributed(self, env: Mapping[str, str], web_nodes: int = 1) -> list[WebProcess]:
        """Start web nodes and one worker; return once every node hears the worker's broadcasts."""
        nodes = [self.start_web(env) for _ in range(web_nodes)]
        self.start_worker(env)
        settings = Settings.from_env(env)
        assert settings.redis_url is not None, "start_distributed needs REDIS_URL"
        wait_for_broadcast_listeners(settings.redis_url, settings.socketio_channel, web_nodes)
        return nodes

    def stop_all(self) -> list[Finished]:
        """Stop every process still running, newest first; return how each one ended."""
        finished = []
        while self._running:
            finished.append(self._running.pop().stop())
        return finished

    def _next_name(self, kind: str) -> str:
        self._started[kind] += 1
        return f"{kind}-{self._started[kind]}"


def wait_for_broadcast_listeners(
    redis_url: str, channel: str, count: int, timeout: float = START_TIMEOUT_SECONDS
) -> None:
    """Wait until `count` web nodes subscribe to the Socket.IO pub/sub channel on Redis."""
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while _subscribers(client, channel) < count:
            if time.monotonic() > deadline:
                raise ProcessFailed(f"fewer than {count} subscribers on {channel!r}")
            time.sleep(POLL_SECONDS)
    finally:
        client.close()


def _subscribers(client: redis.Redis, channel: str) -> int:
    [(_, count)] = client.pubsub_numsub(channel)
    return int(count)


@contextmanager
def service_processes(log_dir: Path) -> Iterator[Processes]:
    """Processes for one test; on a normal exit, each must then shut down cleanly on SIGTERM."""
    with Processes(log_dir) as processes:
        yield processes
        finished = processes.stop_all()
    assert_clean_shutdown(finished)


def assert_clean_shutdown(finished: Iterable[Finished]) -> None:
    """Every process exited 0 on SIGTERM and printed no traceback."""
    for process in finished:
        report = f"{process.name} exited {process.returncode}, printing:\n{process.output}"
        assert process.returncode == 0, report
        assert "Traceback" not in process.output, report
