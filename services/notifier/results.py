"""The notifier's delivery results, written together: those that arrive while a write runs go
in the next.

A batch is one unit of work (the store makes each commit durable on disk before it answers,
which costs more than a write) with one update per job (it pays again per document). At low
load each result goes alone, at once. When a batch fails, its results are written one by one,
so only the faulty one sees the error. ``record`` returns once its result is written.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

from exporter.adapters.mongo.deliveries import DeliveryResult
from exporter.adapters.mongo.jobs import JobRepository
from exporter.service_layer.unit_of_work import Transaction, UnitOfWork


@dataclass
class _Waiting:
    result: DeliveryResult
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class DeliveryResults:
    def __init__(self, unit_of_work: UnitOfWork, jobs: JobRepository) -> None:
        self._unit_of_work = unit_of_work
        self._jobs = jobs
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, result: DeliveryResult) -> None:
        waiting = _Waiting(result)
        self._waiting.append(waiting)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await waiting.done

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            results = [waiting.result for waiting in batch]
            try:
                await self._unit_of_work.run(functools.partial(_record, results))
            except Exception:
                for waiting in batch:
                    await self._alone(waiting)
            else:
                for waiting in batch:
                    waiting.done.set_result(None)

    async def _alone(self, waiting: _Waiting) -> None:
        try:
            await self._jobs.record_results([waiting.result])
        except Exception as error:
            waiting.done.set_exception(error)
        else:
            waiting.done.set_result(None)


async def _record(results: list[DeliveryResult], transaction: Transaction) -> None:
    await transaction.jobs.record_results(results, transaction.session)
