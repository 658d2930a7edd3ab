"""Headless Debian Chromium driven over the DevTools protocol (websocket-client, no webdriver)."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import websocket

from tests.support.procs import wait_until

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-extensions", "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0", "--window-size=1400,1000",
]


def chromium_binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise RuntimeError("Debian's chromium is not installed (the Makefile's services target installs it)")
    return binary


class Browser:
    """One Chromium process with a fresh profile and one page, closed by :meth:`close`."""

    def __init__(self, folder: Path) -> None:
        profile = folder / "chromium-profile"
        profile.mkdir()
        self.log = folder / "chromium.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        port_file = profile / "DevToolsActivePort"
        wait_until(lambda: self._alive() and port_file.exists() and port_file.read_text().strip(), 30,
                   "Chromium's DevTools port", 0.1)
        port = int(port_file.read_text().split()[0])
        pages = wait_until(lambda: _pages(port), 10, "Chromium's first page", 0.1)
        assert isinstance(pages, list)
        # Chromium refuses DevTools websockets that send an Origin it was not told to allow.
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=10, suppress_origin=True)
        self._ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Network.enable")

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"Chromium exited:\n{self.log.read_text(errors='replace')[-3000:]}")
        return True

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events in between are dropped)."""
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
        raise AssertionError(f"no answer to {method} within 30 s")

    def basic_auth(self, user: str, password: str) -> None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.call("Network.setExtraHTTPHeaders", headers={"Authorization": f"Basic {token}"})

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        wait_until(lambda: self.evaluate("document.readyState") == "complete", 20, f"{url} to load", 0.1)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''") or "")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            # Its own session: the renderer and zygote processes go with it.
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)


def _pages(port: int) -> list[dict[str, Any]] | None:
    try:
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
    except httpx.TransportError:
        return None
    pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
    return pages or None
