"""The floor: a no-op Litestar app served exactly as `rapport serve` serves Rapport.

`POST /v1/responses` answers a fixed, completed Response object: no database, no upstream, no
validation. Whatever Rapport does beyond Litestar + uvicorn shows as the gap to this app, which
is why `bench/gateways.py` measures both in the same run (`python bench/floor_app.py --port N`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec
import uvicorn
from litestar import Litestar, Response, get, post

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.commands.serve import UVICORN_OPTIONS

ANSWER = msgspec.json.encode(
    {
        "id": "resp_floor",
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": "test-model",
        "output": [
            {
                "id": "msg_floor",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello.", "annotations": []}],
            }
        ],
        "usage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12},
    }
)


@post("/v1/responses", status_code=200)
async def create_response() -> Response[bytes]:
    return Response(ANSWER, media_type="application/json")


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app() -> Litestar:
    return Litestar([create_response, health])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    uvicorn.run(
        "floor_app:create_app", factory=True, host=args.host, port=args.port, **UVICORN_OPTIONS
    )


if __name__ == "__main__":
    main()
