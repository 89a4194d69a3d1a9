"""The ceiling: one Starlette route answering fixed JSON under uvicorn (python3 starlette_baseline.py PORT FILE)."""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

PAYLOAD = open(sys.argv[2], "rb").read()


async def users(request):
    return Response(PAYLOAD, media_type="application/json")


uvicorn.run(Starlette(routes=[Route("/users", users)]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
