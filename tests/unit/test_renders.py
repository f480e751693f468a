"""The renderer's renders beside its consumer: bounded, the consumer's partitions paused while
every slot is taken and resumed when one frees, the renders in hand cancelled at a stop."""

from __future__ import annotations

import asyncio
from typing import cast

from aiokafka import AIOKafkaConsumer, TopicPartition

from renderer.renders import Renders

PARTITIONS = {TopicPartition("export.requested", n) for n in range(2)}


class Consumer:
    """The part of a consumer that pausing uses."""

    def __init__(self) -> None:
        self.paused_partitions: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return PARTITIONS

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused_partitions |= set(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused_partitions -= set(partitions)


async def until(event: asyncio.Event) -> None:
    await event.wait()


async def test_a_full_renderer_pauses_its_partitions_until_a_render_ends() -> None:
    renders, consumer, release = Renders(limit=1), Consumer(), asyncio.Event()
    renders.start(until(release), name="render a")
    assert renders.full
    renders.hold(cast("AIOKafkaConsumer", consumer))
    assert consumer.paused() == PARTITIONS

    release.set()
    await asyncio.sleep(0)  # the render ends
    await asyncio.sleep(0)  # its done callback runs

    assert not renders.full
    assert consumer.paused() == set()


async def test_a_stop_cancels_the_renders_in_hand_and_takes_no_more() -> None:
    renders = Renders(limit=2)
    cancelled = asyncio.Event()

    async def render() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    renders.start(render(), name="render a")
    keeper = asyncio.create_task(renders.run())
    await asyncio.sleep(0)
    keeper.cancel()
    await asyncio.gather(keeper, return_exceptions=True)

    assert cancelled.is_set()
    assert renders.full
