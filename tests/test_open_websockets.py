"""SIGTERM closes every websocket at once, even one whose client ignores Engine.IO's CLOSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType

from tests.processes import BACKEND_VARIABLES, Processes, service_processes
from tests.test_end_to_end import DEMO_TOKEN

# Long enough for any shutdown; without the fix it takes aiohttp's timeouts, 2 x 10 s.
CLOSE_WAIT_SECONDS = 15.0


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Processes for this test; each must exit 0 on SIGTERM (checked on the way out)."""
    with service_processes(tmp_path) as group:
        yield group


async def test_sigterm_sends_a_going_away_close_to_a_client_that_ignores_engineio_close(
    processes: Processes,
) -> None:
    # Like a browser: socket.io-client does not act on Engine.IO's CLOSE packet over a websocket.
    web = processes.start_web({}, remove=BACKEND_VARIABLES)
    token = DEMO_TOKEN.search(web.output)
    assert token, web.output
    url = f"{web.url}/ws/scoreboard/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        opened = await ws.receive_str()
        assert opened.startswith("0{")
        await ws.send_str("40" + json.dumps({"token": token.group(1)}))
        assert (await ws.receive_str()).startswith("40")
        stopping = asyncio.create_task(asyncio.to_thread(web.stop))
        async with asyncio.timeout(CLOSE_WAIT_SECONDS):
            while (await ws.receive()).type not in {WSMsgType.CLOSE, WSMsgType.CLOSED}:
                pass  # the snapshot, pings and Engine.IO's CLOSE packet, all left unanswered
        assert ws.close_code == WSCloseCode.GOING_AWAY
        finished = await stopping
    assert finished.returncode == 0, finished.output
