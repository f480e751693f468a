"""The system under test: the local servers (the broker's log kept in an S3 server of its own,
so it survives a restart; Tansu's S3 engine wedges its consumer groups when that server restarts,
so it is not the exports' one), a proxy in front of the MongoDB-wire and S3 servers, the SMTP and chat sinks,
and the five services with two replicas of the scheduler, the renderer and the notifier.

The services reach MongoDB and S3 through the proxies; the harness itself reads them directly.
Kafka has no proxy: its broker advertises its own address, which clients then dial directly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from exporter.local.servers import LOOPBACK, LocalS3, LocalServers
from exporter.local.services import LocalServices
from exporter.settings import Settings
from tests.chaos.proxy import Proxy
from tests.chaos.sinks import CHAT_WEBHOOK, ChatSink, SmtpSink
from tests.signing import with_producer

REPLICAS = {"scheduler": 2, "renderer": 2, "notifier": 2}
UPSTREAM = "upstream"  # the key id of the upstream producer of ad-hoc export.requested
TENANT = "default"
RENDER_LEASE_SECONDS = 10.0  # short, so a SIGSTOP outlives it and the zombie's job is taken over
SPLIT_ROWS = 40  # small, so some files are split into parts
KAFKA_BUCKET = "tansu"


def chaos_settings(direct: Settings, mongo: Proxy, s3: Proxy, smtp: SmtpSink, chat: ChatSink) -> Settings:
    """The services' settings: servers through the proxies, mail and chat to the sinks, short
    leases and retries so faults and their recovery fit in minutes, quotas out of the way."""
    values: dict[str, Any] = direct.model_dump(mode="python")
    values["mongo"]["uri"] = SecretStr(f"mongodb://{mongo.address}/?directConnection=true")
    values["storage"]["endpoint"] = s3.address
    values["smtp"] |= {"host": LOOPBACK, "port": smtp.port, "timeout_seconds": 5.0}
    values["api"] |= {
        "max_active_jobs_per_user": 1_000_000,
        "one_active_job_per_target": False,
        "min_periodicity_seconds": 10,
    }
    values["scheduler"] |= {"sweep_interval_seconds": 5.0}
    values["renderer"] |= {"lease_seconds": RENDER_LEASE_SECONDS, "split_rows": SPLIT_ROWS}
    values["notifier"] |= {
        "tenants": {
            TENANT: {"email_domains": ["localhost"], "discord_webhooks": {CHAT_WEBHOOK: chat.url}},
        },
        "discord": {"attach_max_bytes": 0},
        "http_timeout_seconds": 5.0,
        "backoff_initial_seconds": 0.5,
        "backoff_max_seconds": 5.0,
        "sending_lease_seconds": 60.0,
        "sweep_interval_seconds": 5.0,
    }
    settings = Settings.model_validate(values)
    return with_producer(settings, UPSTREAM, ["export.requested"], [TENANT])


@dataclass
class System:
    direct: Settings  # the servers' own addresses, for the harness's reads
    settings: Settings  # the services' view: through the proxies
    servers: LocalServers
    services: LocalServices
    proxies: dict[str, Proxy]
    smtp: SmtpSink
    chat: ChatSink

    @property
    def service_names(self) -> list[str]:
        return list(self.services.status())

    def pid(self, name: str) -> int | None:
        return {**self.servers.status(), **self.services.status()}.get(name)

    async def signal(self, name: str, sig: signal.Signals) -> None:
        """Signals a process and what it forked (each leads its own process group)."""
        pid = self.pid(name)
        if pid is not None:
            with suppress(ProcessLookupError):
                os.killpg(pid, sig)

    async def ensure_running(self) -> None:
        """Starts whatever server or service is not running (after a kill), waiting until ready."""
        await asyncio.to_thread(self.servers.start, 120.0)
        await asyncio.to_thread(self.services.start, 120.0)

    async def restart_server(self, name: str, pause: float) -> None:
        """SIGTERM (SIGKILL after 10 s) one server, ``pause`` seconds down, then started again."""
        await self.signal(name, signal.SIGTERM)
        for _ in range(100):
            if self.servers.status()[name] is None:
                break
            await asyncio.sleep(0.1)
        else:
            await self.signal(name, signal.SIGKILL)
        await asyncio.sleep(pause)
        await asyncio.to_thread(self.servers.start, 120.0)

    async def resume_all(self) -> None:
        """SIGCONT to every service: nothing stays stopped when the run ends early."""
        for name in self.service_names:
            await self.signal(name, signal.SIGCONT)


@asynccontextmanager
async def running_system(run_dir: Path | None = None) -> AsyncIterator[System]:
    """Everything up in a scratch directory (or ``run_dir``); everything stopped afterwards."""
    async with AsyncExitStack() as stack:
        if run_dir is None:
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="exporter-chaos-")))
        # Up before the other servers' ports are picked: its own ports are then taken, not handed out twice.
        broker_store = LocalS3(LocalServers.test_settings(run_dir / "broker-store"))
        stack.callback(broker_store.stop)
        await asyncio.to_thread(broker_store.start, 120.0)
        direct = LocalServers.test_settings(run_dir)
        kafka_store = broker_store.settings.storage.model_copy(update={"bucket": KAFKA_BUCKET})
        servers = LocalServers(direct, kafka_store=kafka_store)
        stack.callback(servers.stop)
        await asyncio.to_thread(servers.start, 120.0)
        proxies = {
            "mongo": Proxy("mongo", _port(direct.mongo.uri.get_secret_value())),
            "s3": Proxy("s3", _port(direct.storage.endpoint)),
        }
        for proxy in proxies.values():
            await proxy.start()
            stack.push_async_callback(proxy.stop)
        smtp, chat = SmtpSink(), ChatSink()
        smtp.start()
        stack.callback(smtp.stop)
        stack.callback(chat.stop)
        settings = chaos_settings(direct, proxies["mongo"], proxies["s3"], smtp, chat)
        services = LocalServices(settings, REPLICAS)
        stack.callback(services.stop)
        await asyncio.to_thread(services.start, 180.0)
        system = System(direct, settings, servers, services, proxies, smtp, chat)
        stack.push_async_callback(system.resume_all)
        yield system


def _port(address: str) -> int:
    return int(address.split("//")[-1].split("/")[0].rsplit(":", 1)[1])
