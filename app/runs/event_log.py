"""Every event of a background response, kept for replay and live tailing.

Redis: one Stream per response (`rapport:events:<id>`), entry id `0-<sequence_number + 1>`, so a
replay after N is an XRANGE from `0-(N+2)` and a live tail is XREAD BLOCK from the last id seen.
Embedded default: the same contract in process memory, for the single-process SQLite setup.

The log ends with an internal `rapport.end` entry (never sent to clients): tailers stop there
whatever the ending was, including a cancel, for which OpenAI has no stream event.

Fencing: a worker's run appends with its attempt (`epoch`), and the append applies only while
the log's fence holds that attempt (one atomic script on Redis). A claim sets the fence to its
attempt, a retry by the sweeper clears it, so a run that lost its lease — a frozen worker that
wakes after the response was given to another — can neither double nor drop the new run's
events: its appends raise `LeaseLost` and it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from app.wire.codec import encoder

END = "rapport.end"


class EventLogClosed(Exception):
    """The log was ended (the response was cancelled or settled elsewhere): stop writing."""


class LeaseLost(Exception):
    """The log is fenced to another attempt of this response: this run is no longer its."""


# Append only while the fence holds the caller's attempt; 0 when it does not.
_FENCED_APPEND = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('XADD', KEYS[1], ARGV[i], 'e', ARGV[i + 1]) end
return 1
"""
# The last events and the end marker, in one step, only while the fence holds the attempt.
_FENCED_END = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
for i = 4, #ARGV, 2 do redis.call('XADD', KEYS[1], ARGV[i], 'e', ARGV[i + 1]) end
redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
# A claim's fence, and its first events when the log already holds `ARGV[3]` (the announcement).
_FENCE = """
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
local held = redis.call('XLEN', KEYS[1])
if held >= tonumber(ARGV[3]) then
  for i = 4, #ARGV, 2 do redis.call('XADD', KEYS[1], ARGV[i], 'e', ARGV[i + 1]) end
end
return held
"""
FENCE_TTL_SECONDS = 86_400


_BLOCK_MS = 5_000


class EventLog(Protocol):
    async def append(
        self, response_id: str, events: Sequence[dict[str, Any]], epoch: int | None = None
    ) -> None:
        """Raises EventLogClosed once the log has been ended; with `epoch`, LeaseLost unless
        the fence holds that attempt."""
        ...

    async def fence(
        self,
        response_id: str,
        epoch: int,
        then: Sequence[dict[str, Any]] = (),
        if_holding: int = 0,
    ) -> int:
        """Give the log to attempt `epoch` (0: to nobody, until the next claim); returns how
        many events it held (what `next_sequence` would have said), in the same round trip.
        `then` is appended in that step too, when the log held at least `if_holding` events:
        a claimed run's first event costs no round trip of its own."""
        ...

    async def next_sequence(self, response_id: str) -> int:
        """The sequence number the next event of this response gets."""
        ...

    async def end(
        self,
        response_id: str,
        ttl_seconds: float,
        final: Sequence[dict[str, Any]] = (),
        epoch: int | None = None,
    ) -> None:
        """Append `final`, then mark the log complete; it is dropped `ttl_seconds` later. With
        `epoch`, LeaseLost (and nothing written) unless the fence holds that attempt."""
        ...

    async def truncate(self, response_id: str, keep: int) -> None:
        """Keep only the first `keep` events (a retried attempt starts again after them)."""
        ...

    def follow(self, response_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
        """Events with sequence_number > `after`, then live ones, until the end marker."""
        ...

    async def exists(self, response_id: str) -> bool: ...


class RedisEventLog:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._fenced_append = client.register_script(_FENCED_APPEND)
        self._fenced_end = client.register_script(_FENCED_END)
        self._fence = client.register_script(_FENCE)

    @staticmethod
    def _key(response_id: str) -> str:
        return f"rapport:events:{response_id}"

    async def fence(
        self,
        response_id: str,
        epoch: int,
        then: Sequence[dict[str, Any]] = (),
        if_holding: int = 0,
    ) -> int:
        arguments: list[Any] = [str(epoch), FENCE_TTL_SECONDS, if_holding]
        for event in then:
            arguments += _entry(event)
        keys = [self._key(response_id), f"rapport:fence:{response_id}"]
        with _closed_is_refused(response_id):
            return int(await self._fence(keys=keys, args=arguments))

    async def append(
        self, response_id: str, events: Sequence[dict[str, Any]], epoch: int | None = None
    ) -> None:
        if not events:
            return
        key = self._key(response_id)
        with _closed_is_refused(response_id):
            if epoch is not None:
                arguments: list[Any] = [str(epoch)]
                for event in events:
                    arguments += _entry(event)
                keys = [key, f"rapport:fence:{response_id}"]
                if not await self._fenced_append(keys=keys, args=arguments):
                    raise LeaseLost(response_id)
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for event in events:
                    entry_id = f"0-{event['sequence_number'] + 1}"
                    pipe.xadd(key, {"e": encoder.encode(event)}, id=entry_id)
                await pipe.execute()

    async def next_sequence(self, response_id: str) -> int:
        return int(await self._redis.xlen(self._key(response_id)))

    async def end(
        self,
        response_id: str,
        ttl_seconds: float,
        final: Sequence[dict[str, Any]] = (),
        epoch: int | None = None,
    ) -> None:
        key, ttl, marker = self._key(response_id), max(1, int(ttl_seconds)), {"type": END}
        if epoch is not None:
            arguments: list[Any] = [str(epoch), encoder.encode(marker), ttl]
            for event in final:
                arguments += _entry(event)
            keys = [key, f"rapport:fence:{response_id}"]
            with _closed_is_refused(response_id):
                if not await self._fenced_end(keys=keys, args=arguments):
                    raise LeaseLost(response_id)
            return
        await self.append(response_id, final)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"e": encoder.encode(marker)}, id="*")
            pipe.expire(key, ttl)
            await pipe.execute()

    async def truncate(self, response_id: str, keep: int) -> None:
        key = self._key(response_id)
        entries: Any = await self._redis.xrange(key, min=f"0-{keep + 1}", max="+")
        if entries:
            await self._redis.xdel(key, *[entry_id for entry_id, _ in entries])
            # XDEL leaves the stream's last id where it was; the retry appends from `keep` again.
            await self._redis.execute_command("XSETID", key, f"0-{keep}")  # type: ignore[no-untyped-call]

    async def exists(self, response_id: str) -> bool:
        return bool(await self._redis.exists(self._key(response_id)))

    async def follow(self, response_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
        key = self._key(response_id)
        last_id = f"0-{after + 1}"
        while True:
            found: Any = await self._redis.xread({key: last_id}, block=_BLOCK_MS, count=500)
            for _stream, entries in found or []:
                for entry_id, fields in entries:
                    last_id = entry_id
                    event = msgspec.json.decode(fields[b"e"])
                    if event["type"] == END:
                        return
                    yield event
            if not found and not await self._redis.exists(key):
                return  # expired or never written: nothing more will come


@contextlib.contextmanager
def _closed_is_refused(response_id: str) -> Iterator[None]:
    """The end marker's id is above every event id: Redis refuses an event after it."""
    try:
        yield
    except ResponseError as exc:
        if "equal or smaller" in str(exc):
            raise EventLogClosed(response_id) from None
        raise


def _entry(event: dict[str, Any]) -> list[Any]:
    """An event's stream entry id and its encoded body, as the scripts take them."""
    return [f"0-{event['sequence_number'] + 1}", encoder.encode(event)]


class MemoryEventLog:
    """In-process log for the embedded default: lists, a condition to wake tailers, expiry."""

    def __init__(self) -> None:
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._ended: dict[str, float] = {}  # response id → expiry (monotonic seconds)
        self._fences: dict[str, int] = {}
        self._changed = asyncio.Condition()

    async def fence(
        self,
        response_id: str,
        epoch: int,
        then: Sequence[dict[str, Any]] = (),
        if_holding: int = 0,
    ) -> int:
        self._fences[response_id] = epoch
        held = len(self._events.get(response_id, []))
        if then and held >= if_holding:
            await self.append(response_id, then, epoch)
        return held

    async def append(
        self, response_id: str, events: Sequence[dict[str, Any]], epoch: int | None = None
    ) -> None:
        async with self._changed:
            if epoch is not None and self._fences.get(response_id) != epoch:
                raise LeaseLost(response_id)
            if response_id in self._ended:
                raise EventLogClosed(response_id)
            self._events.setdefault(response_id, []).extend(events)
            self._changed.notify_all()

    async def next_sequence(self, response_id: str) -> int:
        return len(self._events.get(response_id, []))

    async def end(
        self,
        response_id: str,
        ttl_seconds: float,
        final: Sequence[dict[str, Any]] = (),
        epoch: int | None = None,
    ) -> None:
        await self.append(response_id, final, epoch)
        async with self._changed:
            self._events.setdefault(response_id, [])
            self._ended[response_id] = time.monotonic() + ttl_seconds
            self._changed.notify_all()
        self._drop_expired()

    async def truncate(self, response_id: str, keep: int) -> None:
        async with self._changed:
            del self._events.setdefault(response_id, [])[keep:]
            self._ended.pop(response_id, None)

    async def exists(self, response_id: str) -> bool:
        self._drop_expired()
        return response_id in self._events

    async def follow(self, response_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
        position = after + 1
        while True:
            async with self._changed:
                events = self._events.get(response_id)
                if events is None:
                    return
                pending = events[position:]
                if not pending:
                    if response_id in self._ended:
                        return
                    await self._changed.wait()
                    continue
            position += len(pending)
            for event in pending:
                yield event

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for response_id, expiry in list(self._ended.items()):
            if expiry <= now:
                self._ended.pop(response_id, None)
                self._events.pop(response_id, None)
                self._fences.pop(response_id, None)
