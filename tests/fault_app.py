"""Source of an app with the faults the tests need: crashes, streams, websockets, failing startup."""

FAULT_APP = '''\
import asyncio
import ctypes
import os
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket
from fastapi.responses import StreamingResponse

MESSAGE = {message!r}
{preamble}

@asynccontextmanager
async def lifespan(app):
    {startup}
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
def index():
    return {{"message": MESSAGE}}


@app.get("/boom")
def boom():
    raise ValueError("the app's own bug")


@app.get("/exit")
def exit_now():
    os._exit(1)


@app.get("/segfault")
def segfault():
    ctypes.string_at(0)


@app.get("/stream")
async def stream():
    async def ticks():
        while True:
            yield b"data: tick\\n\\n"
            await asyncio.sleep(0.1)

    return StreamingResponse(ticks(), media_type="text/event-stream")


@app.websocket("/ws")
async def ws(websocket: WebSocket):
    await websocket.accept()
    while True:
        await websocket.send_text(MESSAGE)
        await asyncio.sleep(0.1)
'''


def fault_app(message: str, preamble: str = "", startup: str = "pass") -> str:
    """The app serving {"message": message}; `preamble` runs at import, `startup` in the lifespan."""
    return FAULT_APP.format(message=message, preamble=preamble, startup=startup)
