"""The asyncio shell serving the helper commands' Unix socket (one JSON request and answer per line)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable

from hakeeper.lrm.attributes import AttributeView
from hakeeper.lrm.messages import AttributeUpdate

MAX_REQUEST_BYTES = 64 * 1024


class AttrdServer:
    """Serves ``AttributeView.handle`` on a Unix socket; updates go to ``on_update``."""

    def __init__(self, path: str, view: AttributeView, on_update: Callable[[AttributeUpdate], None]) -> None:
        self.path = path
        self.view = view
        self.on_update = on_update
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._serve, path=self.path, limit=MAX_REQUEST_BYTES)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=10.0)
            writer.write(json.dumps(self._answer(line)).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError):
            pass  # a helper that hangs up or sends too much gets nothing; the LRM carries on
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, line: bytes) -> dict[str, object]:
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "request is not JSON", "code": 64}
        if not isinstance(request, dict):
            return {"ok": False, "error": "request is not a JSON object", "code": 64}
        answer, updates = self.view.handle(request)
        for update in updates:
            self.on_update(update)
        return answer
