"""A server that does no work: every request gets a fixed answer captured from ``lookalike serve`` beforehand.

    python -m lookalike.bench.zero_work_server PORT ANSWERS.json

It runs the same HTTP stack as ``lookalike serve`` (uvicorn, httptools, uvloop, the server's protocol) but reads
nothing of a request beyond its path and answers from memory, so its queries per second are the ceiling that the
benchmark's clients and the machine leave to any Python HTTP server.  The layers suite measures it beside the real
server: with four client processes on a two-core machine the clients' own CPU bounds how much more four clients
can get than one, whatever the server does (the reference, like the BLAS product beside exact search).

ANSWERS.json maps paths to answers: ``{"/api/collections/bench": {...}, "/api/collections/bench/query": {...}}``;
a path it does not name (the health check) gets ``{}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def answering(answers: dict[str, bytes]):
    """The ASGI app: the body of a request is read and dropped, the path's answer sent."""
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        body = answers.get(scope["path"], b"{}")
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    return app


def capture(url: str, collection: str, query: dict, path: Path) -> None:
    """Write to ``path`` the answers of a running lookalike server to its collection info and to ``query``."""
    import httpx

    base = f"/api/collections/{collection}"
    answers = {base: httpx.get(url + base).json(), f"{base}/query": httpx.post(url + f"{base}/query",
                                                                               json=query).json()}
    path.write_text(json.dumps(answers))


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from ..server.http_protocol import LaneHttpProtocol

    port, answers_file = (argv or sys.argv[1:])[:2]
    answers = {path: json.dumps(answer).encode() for path, answer in json.loads(Path(answers_file).read_text()).items()}
    uvicorn.run(answering(answers), host="127.0.0.1", port=int(port), log_level="warning", access_log=False,
                server_header=False, http=LaneHttpProtocol)


if __name__ == "__main__":
    main()
