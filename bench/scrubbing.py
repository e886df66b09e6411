"""What scrubbing costs per streamed delta: the filter every answer's deltas pass through.

Builds the scrubber a deployment has (an OpenAI project key, a route key, the sealing key and
the Fernet key made of it; `--secrets` adds more, as MCP credentials would), then times, in
process: one delta through `StreamScrubber.feed` (a token of ordinary text), one delta through
the run's delta filter (`app/runs/scrubbed.py`, which also rebuilds the delta), the same
filter with no secret at all (the baseline), and one whole 500-character error message.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared import append_results, git_commit, machine

from app.providers.base import StreamEnd, TextDelta
from app.runs.scrubbed import DeltaFilter
from app.secrets.scrubber import Scrubber
from app.wire.responses import ResponseUsage

WORDS = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex jolly imps"


def deployment_secrets(extra: int) -> list[str]:
    sealing = secrets.token_urlsafe(32)
    fernet = base64.urlsafe_b64encode(hashlib.sha256(sealing.encode()).digest()).decode()
    keys = ["sk-proj-" + secrets.token_urlsafe(120), "sk-" + secrets.token_hex(24), sealing]
    return [*keys, fernet, *(secrets.token_urlsafe(24) for _ in range(extra))]


def tokens(count: int) -> list[str]:
    words = WORDS.split()
    return [f" {words[n % len(words)]}" for n in range(count)]


def per_call_us(work: Callable[[], object], rounds: int) -> float:
    """The median over `rounds` batches of one call's time, in microseconds."""
    batch, timings = 1000, []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(batch):
            work()
        timings.append((time.perf_counter() - started) / batch * 1e6)
    return statistics.median(timings)


def filter_us(scrubber: Scrubber, pieces: list[str]) -> float:
    """One delta through the run's delta filter, averaged over a whole stream."""
    deltas = [TextDelta(piece) for piece in pieces]
    end = StreamEnd("stop", ResponseUsage(input_tokens=0, output_tokens=0, total_tokens=0))
    filtering = DeltaFilter(scrubber)
    started = time.perf_counter()
    for delta in deltas:
        filtering.on(delta)
    filtering.on(end)
    return (time.perf_counter() - started) / len(pieces) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--secrets", type=int, default=0, help="more secrets (MCP credentials)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    scrubber = Scrubber(deployment_secrets(args.secrets))
    stream = scrubber.stream()
    pieces = tokens(1000)
    cycle = iter(pieces * (args.rounds * 1000 // len(pieces) + 2))
    feed = per_call_us(lambda: stream.feed(next(cycle)), args.rounds)
    message = (WORDS + " ") * 6
    whole = per_call_us(lambda: scrubber.scrub(message[:500]), args.rounds)
    stream_pieces = tokens(20000)
    filtered = filter_us(scrubber, stream_pieces)
    baseline = filter_us(Scrubber(()), stream_pieces)
    count = len(scrubber.secrets)
    markdown = (
        f"## secrets · scrubbing cost · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" · commit {git_commit()}\n\n"
        f"{count} secrets ({count * 9} forms at most); {machine()}.\n\n"
        "| what | µs |\n|---|---:|\n"
        f"| `StreamScrubber.feed`, one token of ordinary text | {feed:.2f} |\n"
        f"| one delta through the run's filter (`runs/scrubbed.py`) | {filtered:.2f} |\n"
        f"| the same filter with no secret (passes deltas through) | {baseline:.2f} |\n"
        f"| `scrub` of a whole 500-character message | {whole:.2f} |\n"
    )
    print(markdown)
    if not args.no_record:
        append_results(markdown)


if __name__ == "__main__":
    main()
