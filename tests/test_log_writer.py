"""A background run's events reach the Redis event log in order, in few appends, without
waiting for more, and a lost lease still stops the run; the last ones and the end marker go in
one fenced step."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis
from saq.job import Job, Status

from app.queue.redis import make_saq_queue
from app.runs.event_log import LeaseLost, MemoryEventLog, RedisEventLog
from app.runs.log_writer import LogWriter

REDIS_URL = os.environ.get("RAPPORT_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


class CountingLog(RedisEventLog):
    """The real Redis log, remembering the size of each append it was asked for."""

    def __init__(self, client: aioredis.Redis) -> None:
        super().__init__(client)
        self.batches: list[int] = []

    async def append(
        self, response_id: str, events: Sequence[dict[str, Any]], epoch: int | None = None
    ) -> None:
        self.batches.append(len(events))
        await super().append(response_id, events, epoch)


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def response_id(client: aioredis.Redis) -> AsyncIterator[str]:
    response_id = f"resp_logwriter{secrets.token_hex(6)}"
    yield response_id
    await client.delete(f"rapport:events:{response_id}", f"rapport:fence:{response_id}")


def event(number: int) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "sequence_number": number, "delta": f"w{number}"}


async def stored(log: RedisEventLog, response_id: str) -> list[dict[str, Any]]:
    await log.end(response_id, 60)
    return [e async for e in log.follow(response_id, -1)]


async def test_a_burst_goes_in_order_in_few_appends(
    client: aioredis.Redis, response_id: str
) -> None:
    log = CountingLog(client)
    await log.fence(response_id, 1)
    writer = LogWriter(log, response_id, 1)
    for number in range(50):
        writer.add(event(number))
    await writer.flush()
    assert [e["sequence_number"] for e in await stored(log, response_id)] == list(range(50))
    assert sum(log.batches) == 50
    assert len(log.batches) <= 3  # the first event alone, then the rest of the burst


async def test_a_lone_event_is_sent_without_a_flush(
    client: aioredis.Redis, response_id: str
) -> None:
    log = RedisEventLog(client)
    await log.fence(response_id, 1)
    writer = LogWriter(log, response_id, 1)
    writer.add(event(0))
    async with asyncio.timeout(2):  # a live tailer gets it, though no flush and no more come
        first = await anext(aiter(log.follow(response_id, -1)))
    assert first == event(0)
    await writer.flush()


async def test_a_lost_lease_stops_the_run_at_its_next_event(
    client: aioredis.Redis, response_id: str
) -> None:
    log = RedisEventLog(client)
    await log.fence(response_id, 1)
    writer = LogWriter(log, response_id, 1)
    writer.add(event(0))
    await writer.flush()
    await log.fence(response_id, 2)  # the sweeper gave the response to another attempt
    writer.add(event(1))
    with pytest.raises(LeaseLost):
        await writer.flush()
    writer.add(event(2))
    with pytest.raises(LeaseLost):  # nor does a later event get in
        await writer.flush()
    assert [e["sequence_number"] for e in await stored(log, response_id)] == [0]


async def test_discard_keeps_the_rest_out(client: aioredis.Redis, response_id: str) -> None:
    log = RedisEventLog(client)
    await log.fence(response_id, 1)
    writer = LogWriter(log, response_id, 1)
    writer.add(event(0))
    await writer.flush()
    writer.add(event(1))
    writer.add(event(2))
    await writer.discard()
    kept = [e["sequence_number"] for e in await stored(log, response_id)]
    assert kept in ([0], [0, 1])  # event 1 may have been on its way already; 2 never is


async def test_the_fenced_end_writes_the_last_events_and_the_marker_together(
    client: aioredis.Redis, response_id: str
) -> None:
    log = RedisEventLog(client)
    assert await log.fence(response_id, 1) == 0
    await log.append(response_id, [event(0)], 1)
    assert await log.fence(response_id, 1) == 1  # the claim learns the length in one trip
    await log.end(response_id, 60, [event(1), event(2)], epoch=1)
    assert [e["sequence_number"] async for e in log.follow(response_id, -1)] == [0, 1, 2]
    assert 0 < await client.ttl(f"rapport:events:{response_id}") <= 60


async def test_a_run_that_lost_its_lease_cannot_end_the_log(
    client: aioredis.Redis, response_id: str
) -> None:
    log = RedisEventLog(client)
    await log.fence(response_id, 2)  # attempt 2 holds it
    with pytest.raises(LeaseLost):
        await log.end(response_id, 60, [event(0)], epoch=1)
    assert await log.next_sequence(response_id) == 0  # neither the event nor the marker


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_a_claim_writes_its_first_event_with_the_fence_once_the_announcement_is_there(
    client: aioredis.Redis, response_id: str, kind: str
) -> None:
    log: RedisEventLog | MemoryEventLog = (
        RedisEventLog(client) if kind == "redis" else MemoryEventLog()
    )
    # Nothing announced yet (accepted while Redis was down): the fence alone, nothing appended.
    assert await log.fence(response_id, 1, [event(2)], if_holding=2) == 0
    assert await log.next_sequence(response_id) == 0
    await log.append(response_id, [event(0), event(1)], 1)
    # Announced: a retried claim (attempt 2) takes the log and appends in the same step.
    assert await log.fence(response_id, 2, [event(2)], if_holding=2) == 2
    assert await log.next_sequence(response_id) == 3
    with pytest.raises(LeaseLost):  # the fence moved to attempt 2 in that step
        await log.append(response_id, [event(3)], 1)
    await log.end(response_id, 60, [event(3)], epoch=2)
    assert [e["sequence_number"] async for e in log.follow(response_id, -1)] == [0, 1, 2, 3]


async def test_the_job_queue_announces_no_status_changes(client: aioredis.Redis) -> None:
    """saq's per-status PUBLISH had no listener in Rapport: the queue no longer sends it."""
    queue = make_saq_queue(client)
    job = Job(function="run_response", key=f"resp_announce{secrets.token_hex(6)}", queue=queue)
    async with client.pubsub() as pubsub:
        await pubsub.subscribe(job.id)
        assert (await pubsub.get_message(timeout=1.0))["type"] == "subscribe"
        await queue.update(job, status=Status.ACTIVE)
        assert await pubsub.get_message(timeout=0.5) is None
        assert await queue.job(job.key) is not None  # the status itself is still stored
    await client.delete(job.id)


async def fenced_writer(log: RedisEventLog, response_id: str) -> LogWriter:
    """A writer for attempt 1, which holds the log's fence."""
    await log.fence(response_id, 1)
    return LogWriter(log, response_id, 1)


async def test_what_is_unsent_at_the_end_goes_with_the_terminal_event(
    client: aioredis.Redis, response_id: str
) -> None:
    """A run's last burst: the append on its way is waited for, the rest is handed back and
    written by the fenced end, so the log holds every event once, in order, then the end."""
    log = CountingLog(client)
    writer = await fenced_writer(log, response_id)
    writer.add(event(0))
    await asyncio.sleep(0)  # its append is on its way
    for number in range(1, 20):
        writer.add(event(number))
    rest = await writer.unsent()
    assert log.batches == [1]  # the first went alone; the others piled up behind it
    assert [e["sequence_number"] for e in rest] == list(range(1, 20))
    await log.end(response_id, 60, [*rest, event(20)], epoch=1)
    assert [e["sequence_number"] async for e in log.follow(response_id, -1)] == list(range(21))
    assert await writer.unsent() == []  # nothing is handed back twice


async def test_a_lost_lease_is_raised_by_unsent(client: aioredis.Redis, response_id: str) -> None:
    log = RedisEventLog(client)
    writer = await fenced_writer(log, response_id)
    await log.fence(response_id, 2)  # the sweeper gave the response to another attempt
    writer.add(event(0))
    await asyncio.sleep(0)  # its append is on its way
    with pytest.raises(LeaseLost):
        await writer.unsent()


async def test_an_append_not_yet_begun_is_handed_back_not_sent(
    client: aioredis.Redis, response_id: str
) -> None:
    log = CountingLog(client)
    writer = await fenced_writer(log, response_id)
    writer.add(event(0))
    assert await writer.unsent() == [event(0)]
    assert log.batches == []  # nothing is sent twice: the end will write it
