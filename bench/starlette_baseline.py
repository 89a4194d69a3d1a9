"""The ceiling: bare Starlette routes answering fixed JSON under uvicorn, one route per payload
file (python3 starlette_baseline.py PORT DIRECTORY serves DIRECTORY/NAME.json at /NAME)."""

import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


def fixed(payload: bytes):
    async def answer(request):
        return Response(payload, media_type="application/json")

    return answer


routes = [Route(f"/{path.stem}", fixed(path.read_bytes())) for path in Path(sys.argv[2]).glob("*.json")]
uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
