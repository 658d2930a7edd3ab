"""A fake ComfyUI server: real HTTP and websocket on a loopback port, behaving like the
recordings in ``shared/comfy`` (PROTOCOL.md, object_info.json, traces/).

It validates prompts the way ComfyUI does (same error types and shapes), runs them
one at a time from a queue, caches an identical re-run, and "executes" VibeVoice
nodes with a synthetic voice (``comfy_nodes``). Tests steer it, in process or over
``POST /_fake/config``, to be slow, hold prompts until released (``hold``), fail a node,
drop or silence the websocket, stop answering, or restart and lose its history; or to lack a node pack
(``drop_nodes``), weight files (``drop_files``, ``model_files`` for ``GET /models/{folder}``),
a GPU (``gpu=False``), or to run another version of a node (``input_overrides``).
``/system_stats`` shows a GPU whose VRAM in use grows while a VibeVoice model is loaded.

In process::

    with FakeComfy(synth_seconds=0.5) as fake:
        fake.url ...; fake.configure(fail_node="VibeVoiceTTS"); fake.restart(); fake.stats

As a process: ``python -m tests.fakes.comfyui --port 8188``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import mimetypes
import posixpath
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from aiohttp import WSMsgType, web

from narrator.comfy.object_info import CustomValidator, packaged, validate_prompt, with_state

from .comfy_nodes import NODES, SLOW_NODES, Context, NodeError, node_text

_TROUBLE = "500 Internal Server Error\n\nServer got itself in trouble"
GIB = 1024**3
SHARD = "model-00001-of-00001.safetensors"


@dataclass
class FakeConfig:
    synth_seconds: float = 0.0
    """Time a prompt with a VibeVoice node takes to execute, all in: the fake's own work
    (loading voices, making and saving the audio) counts toward it, as a GPU's would.
    The wait is in the VibeVoice node, so it is interruptible there."""
    seconds_per_word: float = 0.3
    fail_node: str | None = None
    """A class_type or node id whose execution fails with ``execution_error``."""
    fail_marker: str | None = None
    """Fail only when the node's text contains this."""
    fail_message: str = "CUDA error: out of memory"
    fail_type: str = "torch.OutOfMemoryError"
    ws_silent: bool = False
    """Accept websockets but send nothing on them."""
    ws_drop: int = 0
    """Close every websocket when each of the next N prompts starts."""
    ws_refuse: bool = False
    """Refuse new websocket connections (503)."""
    ws_stay_down: bool = False
    """After a ``ws_drop``, refuse new websocket connections."""
    hang: bool = False
    """Stop answering: HTTP requests wait forever, websockets fall silent."""
    hold: bool = False
    """Keep every prompt in its VibeVoice node (after ``synth_seconds``) until set back to False or the
    prompt is interrupted: a test decides when a chunk ends, instead of racing a clock. Kept over restarts."""
    hold_until_queued: bool = False
    """Keep each prompt in its VibeVoice node (like ``hold``) until another prompt waits in the queue: a client
    that keeps the queue fed goes on at any speed, one that does not stalls. Set it back to False for the last."""
    speech: bool = False
    """VibeVoice nodes speak real English (the embedded Piper voice) rather than vowels: for speech checks."""
    garble_every: int = 0
    """Cut the first synthesis of every Nth distinct text (the 1st, the N+1th, ...) to its first half,
    as a sampling model breaks a chunk now and then; a text posted again (another seed) is whole. 0: never."""
    enemyx_models: list[str] | None = None
    """None: no Enemyx pack, as on the pinned image. A list: the Enemyx pack is installed with these
    model folders, as on the server the first traces were recorded from (they use its nodes)."""
    model_files: dict[str, list[str]] = field(default_factory=lambda: shipped_model_files())
    """``GET /models/{folder}``: the files in each model folder; a folder not here answers 404."""
    drop_files: list[str] = field(default_factory=list)
    """Files left out of every ``/models/{folder}`` listing (weights not fetched)."""
    drop_nodes: list[str] = field(default_factory=list)
    """Node classes left out of ``/object_info`` (their node pack not installed): prompts using them are refused."""
    input_overrides: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """``{class_type: {input: [type, options]}}``: replace (or add as required) inputs in ``/object_info``,
    like another version of a node pack."""
    gpu: bool = True
    """``/system_stats`` shows a CUDA device; False: a CPU-only server (like the recording's)."""
    vram_total: int = 24 * GIB
    vram_base: int = GIB // 2
    """VRAM in use with no model loaded (the CUDA context)."""
    vram_per_model: dict[str, int] = field(
        default_factory=lambda: {"VibeVoice-1.5B": 6 * GIB, "VibeVoice-Large": 19 * GIB}
    )
    """VRAM a VibeVoiceTTS ``model_name`` holds once it ran, until ``/free`` unloads models (4 GiB if not here)."""


def shipped_model_files() -> dict[str, list[str]]:
    """Every weight file the shipped model files declare, and a shard beside them: every model is ready."""
    from narrator.models import load_folder
    from narrator.settings import PROJECT_WORKFLOWS

    listing: dict[str, set[str]] = {}
    for spec in load_folder(PROJECT_WORKFLOWS)[0]:
        if spec.weights is not None:
            files = listing.setdefault(spec.weights.folder, set())
            files.update(spec.weights.files)
            files.add(f"{posixpath.dirname(spec.weights.files[0])}/{SHARD}")
    return {folder: sorted(files) for folder, files in listing.items()}


@dataclass
class FakeStats:
    prompts_posted: int = 0
    prompts_executed: int = 0
    nodes_executed: Counter[str] = field(default_factory=Counter)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    """Every accepted prompt, as posted."""
    uploads: list[str] = field(default_factory=list)
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    history_deletes: list[str] = field(default_factory=list)
    ws_connections: int = 0
    ws_dropped: int = 0
    restarts: int = 0
    finished_at: dict[str, float] = field(default_factory=dict)
    """prompt_id -> ``time.perf_counter()`` when its ``executing null`` was sent (this process's clock)."""
    finished_wall: dict[str, float] = field(default_factory=dict)
    """The same moment as ``time.time()``, comparable across processes."""
    posted_wall: dict[str, float] = field(default_factory=dict)
    """prompt_id -> ``time.time()`` when ``POST /prompt`` accepted it."""
    started_wall: dict[str, float] = field(default_factory=dict)
    """prompt_id -> ``time.time()`` when its execution began (``execution_start``)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["nodes_executed"] = dict(self.nodes_executed)
        return data


@dataclass
class _Item:
    number: int
    prompt_id: str
    prompt: dict[str, Any]
    extra: dict[str, Any]
    outputs: list[str]

    def as_list(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra, self.outputs]


def _enemyx_nodes() -> dict[str, Any]:
    """The Enemyx pack's nodes as the first recording's server listed them (enemyx_nodes.json)."""
    nodes = json.loads((Path(__file__).with_name("enemyx_nodes.json")).read_text())
    nodes.pop("_source")
    return nodes  # type: ignore[no-any-return]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _tone() -> np.ndarray:
    t = np.arange(24000) / 24000
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


class FakeComfy:
    def __init__(self, root: Path | None = None, port: int = 0, host: str = "127.0.0.1", **config: Any) -> None:
        self.config = FakeConfig(**config)
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="fake-comfy-")) if root is None else root
        self.ctx = Context(self.root / "input", self.root / "output", self.root / "temp")
        for folder in (self.ctx.input_dir, self.ctx.output_dir, self.ctx.temp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not (self.ctx.input_dir / "test_tone.wav").exists():
            sf.write(str(self.ctx.input_dir / "test_tone.wav"), _tone(), 24000, subtype="PCM_16")
        self.host, self.port = host, port
        self.stats = FakeStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self.history: dict[str, dict[str, Any]] = {}
        self.pending: list[_Item] = []
        self.running: _Item | None = None
        self.number = 0
        self.cache: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}
        self.sockets: dict[str, set[web.WebSocketResponse]] = {}
        self.last_node: str | None = None
        self._worker: asyncio.Task[None] | None = None
        self._began = 0.0
        """perf_counter() when the running prompt began executing."""
        self._tail = 0.0
        """How long the last prompt took after its VibeVoice node (saving, messages): the
        next VibeVoice node waits that much less, so a prompt lasts synth_seconds in all."""
        self._tts_done = 0.0
        self._wake: asyncio.Event | None = None
        self._interrupt: asyncio.Event | None = None
        self._unhang: asyncio.Event | None = None
        self.texts_seen: list[str] = []
        """Distinct VibeVoice texts, in the order first posted (``garble_every``)."""
        self.loaded_model: str | None = None
        """The VibeVoice model_name in (fake) VRAM: set when VibeVoiceTTS runs, cleared by ``/free`` and restarts."""

    # -- control, from any thread ---------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeComfy:
        ready = threading.Event()

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._stop())
            self._loop.close()

        self._thread = threading.Thread(target=main, name="fake-comfyui", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake ComfyUI did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> FakeComfy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def configure(self, **changes: Any) -> None:
        """Change behaviour; takes effect for the next request or node."""
        names = {f.name for f in fields(FakeConfig)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fake settings: {sorted(unknown)}")
        for key, value in changes.items():
            setattr(self.config, key, value)
        if "hang" in changes and not changes["hang"]:
            self._in_loop(self._release)

    def restart(self, down_seconds: float = 0.2, wait: bool = True) -> None:
        """Go away (connections refused) for ``down_seconds`` and come back empty: no history, no queue."""
        future = asyncio.run_coroutine_threadsafe(self._restart(down_seconds), self._require_loop())
        if wait:
            future.result(down_seconds + 10)

    def output_files(self) -> list[Path]:
        return sorted(p for p in self.ctx.output_dir.rglob("*") if p.is_file())

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the fake is not running")
        return self._loop

    def _in_loop(self, fn: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(fn)

    def _release(self) -> None:
        if self._unhang is not None:
            self._unhang.set()

    # -- lifecycle, in the loop ------------------------------------------------------------

    async def _start(self) -> None:
        self._wake, self._interrupt, self._unhang = asyncio.Event(), asyncio.Event(), asyncio.Event()
        app = web.Application(middlewares=[self._hang_middleware], client_max_size=256 * 1024 * 1024)
        self._routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self._site = site
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _stop(self) -> None:
        # Stop listening first, like a process that dies: reconnects are refused, not left hanging.
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for sockets in list(self.sockets.values()):
            for ws in list(sockets):
                await ws.close(code=1001)
        if self._unhang is not None:
            self._unhang.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _restart(self, down_seconds: float) -> None:
        await self._stop()
        self._reset_state()
        self.config.hang = False
        self.stats.restarts += 1
        # asyncio drops (without closing) a connection accepted just as its server closes; it
        # would hang the client. A dead process resets every connection: collect it now.
        await asyncio.sleep(0.01)
        gc.collect()
        await asyncio.sleep(down_seconds)
        await self._start()

    @web.middleware
    async def _hang_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.config.hang and not request.path.startswith("/_fake") and self._unhang is not None:
            self._unhang.clear()
            await self._unhang.wait()
        response: web.StreamResponse = await handler(request)
        return response

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/ws", self._ws)
        r.add_get("/system_stats", self._system_stats)
        r.add_get("/object_info", self._object_info)
        r.add_get("/object_info/{node_class}", self._object_info)
        r.add_get("/models", self._model_folders)
        r.add_get("/models/{folder}", self._models)
        r.add_post("/upload/image", self._upload)
        r.add_post("/prompt", self._post_prompt)
        r.add_get("/history", self._get_history)
        r.add_get("/history/{prompt_id}", self._get_history)
        r.add_post("/history", self._post_history)
        r.add_get("/queue", self._get_queue)
        r.add_post("/queue", self._post_queue)
        r.add_post("/interrupt", self._post_interrupt)
        r.add_post("/free", self._post_free)
        r.add_get("/view", self._view)
        r.add_post("/_fake/config", self._fake_config)
        r.add_get("/_fake/stats", self._fake_stats)
        r.add_post("/_fake/restart", self._fake_restart)

    # -- websocket ----------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.config.ws_refuse:
            return web.Response(status=503, text="websocket refused by the fake")
        sid = request.query.get("clientId") or uuid.uuid4().hex
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.setdefault(sid, set()).add(ws)
        self.stats.ws_connections += 1
        try:
            status = {"status": {"exec_info": {"queue_remaining": self._remaining()}}, "sid": sid}
            await self._send_to(ws, "status", status)
            running = self.running
            if running is not None and running.extra.get("client_id") == sid and self.last_node is not None:
                await self._send_to(ws, "executing", {"node": self.last_node, "prompt_id": running.prompt_id})
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.sockets.get(sid, set()).discard(ws)
        return ws

    async def _send_to(self, ws: web.WebSocketResponse, kind: str, data: Mapping[str, Any]) -> None:
        if self.config.ws_silent or self.config.hang or ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(json.dumps({"type": kind, "data": data}))

    async def _send(self, kind: str, data: Mapping[str, Any], sid: str | None, broadcast: bool = False) -> None:
        """To one client id; to everyone only when broadcast (a prompt without client_id tells nobody)."""
        if sid is None and not broadcast:
            return
        targets = [ws for s in self.sockets.values() for ws in s] if sid is None else list(self.sockets.get(sid, ()))
        for ws in targets:
            await self._send_to(ws, kind, data)

    async def _drop_sockets(self) -> None:
        for sockets in list(self.sockets.values()):
            for ws in list(sockets):
                self.stats.ws_dropped += 1
                await ws.close(code=1011)
        self.sockets.clear()

    def _remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    async def _status(self) -> None:
        await self._send("status", {"status": {"exec_info": {"queue_remaining": self._remaining()}}}, None, True)

    # -- HTTP ----------------------------------------------------------------------------------

    def vram_used(self) -> int:
        model = self.loaded_model
        if model is None:
            return self.config.vram_base
        return self.config.vram_base + self.config.vram_per_model.get(model, 4 * GIB)

    async def _system_stats(self, request: web.Request) -> web.Response:
        ram_total, ram_free = 24 * GIB, 18 * GIB
        if self.config.gpu:
            total, used = self.config.vram_total, self.vram_used()
            device = {"name": "cuda:0 Fake GPU : cudaMallocAsync", "type": "cuda", "index": 0,
                      "vram_total": total, "vram_free": total - used,
                      "torch_vram_total": used - self.config.vram_base, "torch_vram_free": GIB // 8}
        else:
            device = {"name": "cpu", "type": "cpu", "index": None, "vram_total": ram_total, "vram_free": ram_free,
                      "torch_vram_total": ram_total, "torch_vram_free": ram_free}
        system = {
            "os": "posix", "ram_total": ram_total, "ram_free": ram_free, "comfyui_version": "0.3.64",
            "required_frontend_version": "1.27.10", "python_version": sys.version, "pytorch_version": "2.8.0+cu128",
            "embedded_python": False, "argv": ["main.py", "--listen", self.host, "--port", str(self.port)],
        }
        return web.json_response({"system": system, "devices": [device]})

    async def _model_folders(self, request: web.Request) -> web.Response:
        return web.json_response(sorted(self.config.model_files))

    async def _models(self, request: web.Request) -> web.Response:
        """Like ComfyUI's: the files of a registered model folder type, sorted; 404 for any other name."""
        files = self.config.model_files.get(request.match_info["folder"])
        if files is None:
            return web.Response(status=404)
        dropped = set(self.config.drop_files)
        return web.json_response(sorted(f for f in files if f not in dropped))

    def info(self) -> dict[str, Any]:
        """``/object_info`` as this server's folders make it."""
        files = sorted(str(p.relative_to(self.ctx.input_dir)) for p in self.ctx.input_dir.rglob("*") if p.is_file())
        lists: dict[tuple[str, str], list[str]] = {("LoadAudio", "audio"): files}
        base = packaged()
        if self.config.enemyx_models is not None:
            base = {**base, **_enemyx_nodes()}
            models = list(self.config.enemyx_models) or ["No models found"]
            lists[("VibeVoiceSingleSpeakerNode", "model")] = models
            lists[("VibeVoiceMultipleSpeakersNode", "model")] = models
        info = with_state(base, lists)
        for class_type in self.config.drop_nodes:
            info.pop(class_type, None)
        for class_type, inputs in self.config.input_overrides.items():
            node_inputs = info.get(class_type, {}).get("input", {})
            for name, spec in inputs.items():
                where = next((c for c in ("required", "optional") if name in node_inputs.get(c, {})), "required")
                node_inputs.setdefault(where, {})[name] = spec
        return info

    async def _object_info(self, request: web.Request) -> web.Response:
        info = self.info()
        name = request.match_info.get("node_class")
        if name is not None:
            return web.json_response({name: info[name]} if name in info else {})
        return web.json_response(info)

    async def _upload(self, request: web.Request) -> web.Response:
        post = await request.post()
        image = post.get("image")
        if image is None or not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        kind = str(post.get("type") or "input")
        base = {"input": self.ctx.input_dir, "temp": self.ctx.temp_dir, "output": self.ctx.output_dir}.get(kind)
        if base is None:
            return web.Response(status=400)
        subfolder = str(post.get("subfolder") or "")
        folder = (base / subfolder).resolve()
        filename = image.filename
        path = (folder / filename).resolve()
        if not path.is_relative_to(base.resolve()):
            return web.Response(status=400)
        folder.mkdir(parents=True, exist_ok=True)
        data = image.file.read()
        if str(post.get("overwrite")) not in ("true", "1"):
            stem, dot, ext = filename.rpartition(".")
            i = 1
            while path.exists():
                if hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest():
                    break
                filename = f"{stem} ({i}).{ext}" if dot else f"{filename} ({i})"
                path = folder / filename
                i += 1
        path.write_bytes(data)
        self.stats.uploads.append(f"{subfolder}/{filename}" if subfolder else filename)
        return web.json_response({"name": filename, "subfolder": subfolder, "type": kind})

    def _validators(self) -> dict[str, CustomValidator]:
        def loadaudio(values: Mapping[str, Any]) -> bool | str:
            name = str(values.get("audio", ""))
            ok = bool(name) and ".." not in name and (self.ctx.input_dir / name).is_file()
            return True if ok else f"Invalid audio file: {name}"

        return {"LoadAudio": CustomValidator(("audio",), loadaudio)}

    async def _post_prompt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=500, text=_TROUBLE)
        if not isinstance(body, dict):
            return web.Response(status=500, text=_TROUBLE)
        number = self.number
        self.number += 1
        self.stats.prompts_posted += 1
        if "prompt" not in body:
            error: dict[str, Any] = {"type": "no_prompt", "message": "No prompt provided"}
            error.update(details="No prompt provided", extra_info={})
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        prompt = body["prompt"]
        if not isinstance(prompt, dict):
            return web.Response(status=500, text=_TROUBLE)
        result = validate_prompt(prompt, self.info(), self._validators(), body.get("partial_execution_targets"))
        if not result.ok:
            return web.json_response(result.response(), status=400)
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        self.pending.append(_Item(number, prompt_id, prompt, extra, sorted(result.good_outputs)))
        self.stats.prompts.append(prompt)
        self.stats.posted_wall[prompt_id] = time.time()
        await self._status()
        assert self._wake is not None
        self._wake.set()
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors})

    async def _get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info.get("prompt_id")
        if prompt_id is not None:
            entry = self.history.get(prompt_id)
            return web.json_response({prompt_id: entry} if entry is not None else {})
        items = list(self.history.items())
        max_items = request.query.get("max_items")
        if max_items:
            items = items[-int(max_items) :]
        return web.json_response(dict(items))

    async def _post_history(self, request: web.Request) -> web.Response:
        body = await _json_or_empty(request)
        if body.get("clear"):
            self.history.clear()
        for prompt_id in body.get("delete") or ():
            self.stats.history_deletes.append(str(prompt_id))
            self.history.pop(str(prompt_id), None)
        return web.Response(status=200)

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [self.running.as_list()] if self.running else []
        pending = [i.as_list() for i in sorted(self.pending, key=lambda i: i.number)]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await _json_or_empty(request)
        if body.get("clear"):
            self.pending.clear()
        doomed = {str(p) for p in body.get("delete") or ()}
        if doomed:
            self.pending = [i for i in self.pending if i.prompt_id not in doomed]
        await self._status()
        return web.Response(status=200)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        body = await _json_or_empty(request)
        self.stats.interrupts.append(body)
        prompt_id = body.get("prompt_id")
        running = self.running
        if (not prompt_id or (running is not None and running.prompt_id == prompt_id)) and self._interrupt:
            self._interrupt.set()
        return web.Response(status=200)

    async def _post_free(self, request: web.Request) -> web.Response:
        if (await _json_or_empty(request)).get("unload_models"):
            self.loaded_model = None
        return web.Response(status=200)

    async def _view(self, request: web.Request) -> web.StreamResponse:
        filename = request.query.get("filename")
        if not filename:
            return web.Response(status=404)
        if filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        base = {"input": self.ctx.input_dir, "output": self.ctx.output_dir, "temp": self.ctx.temp_dir}.get(
            request.query.get("type", "output")
        )
        if base is None:
            return web.Response(status=400)
        folder = (base / request.query.get("subfolder", "")).resolve()
        if not folder.is_relative_to(base.resolve()):
            return web.Response(status=403)
        path = folder / Path(filename).name
        if not path.is_file():
            return web.Response(status=404)
        kind = {".flac": "audio/flac", ".opus": "audio/ogg", ".mp3": "audio/mpeg"}.get(path.suffix)
        kind = kind or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return web.Response(body=path.read_bytes(), content_type=kind)

    async def _fake_config(self, request: web.Request) -> web.Response:
        try:
            self.configure(**(await request.json()))
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(asdict(self.config))

    async def _fake_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_json())

    async def _fake_restart(self, request: web.Request) -> web.Response:
        down = float((await _json_or_empty(request)).get("down_seconds", 0.2))
        asyncio.get_running_loop().create_task(self._restart(down))
        return web.Response(status=200)

    # -- execution --------------------------------------------------------------------------------

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            if not self.pending:
                self._wake.clear()
                continue
            self.pending.sort(key=lambda i: i.number)
            self.running = self.pending.pop(0)
            await self._execute(self.running)

    async def _execute(self, item: _Item) -> None:
        assert self._interrupt is not None
        self._interrupt.clear()
        sid = item.extra.get("client_id")
        pid = item.prompt_id
        log: list[list[Any]] = []

        async def say(kind: str, data: dict[str, Any], keep: bool = False) -> None:
            data = {**data, "prompt_id": pid} if "prompt_id" not in data else data
            if keep:
                log.append([kind, data])
            await self._send(kind, data, sid)

        self.stats.started_wall[pid] = time.time()
        self._began, self._tts_done = time.perf_counter(), 0.0
        await self._status()
        await say("execution_start", {"prompt_id": pid, "timestamp": _now_ms()}, keep=True)
        if self.config.ws_drop > 0:
            self.config.ws_drop -= 1
            self.config.ws_refuse = self.config.ws_refuse or self.config.ws_stay_down
            await self._drop_sockets()
        order = _order(item.prompt, item.outputs)
        sigs = {nid: _signature(item.prompt, nid, self.ctx.input_dir) for nid in order}
        cached = [nid for nid in order if sigs[nid] in self.cache]
        await say("execution_cached", {"nodes": cached, "prompt_id": pid, "timestamp": _now_ms()}, keep=True)
        values: dict[str, tuple[Any, ...]] = {}
        outputs: dict[str, dict[str, Any]] = {}
        new_cache: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}
        for nid in cached:
            values[nid], ui = self.cache[sigs[nid]]
            new_cache[sigs[nid]] = (values[nid], ui)
            if ui:
                outputs[nid] = ui
                await say("executed", {"node": nid, "display_node": nid, "output": ui, "prompt_id": pid})
        status = "success"
        progress: dict[str, dict[str, Any]] = {}

        async def state(nid: str, running: bool) -> None:
            progress[nid] = {
                "value": 0.0 if running else 1.0, "max": 1.0, "state": "running" if running else "finished",
                "node_id": nid, "prompt_id": pid, "display_node_id": nid, "parent_node_id": None, "real_node_id": nid,
            }
            await say("progress_state", {"prompt_id": pid, "nodes": dict(progress)})

        for nid in [n for n in order if n not in cached]:
            node = item.prompt[nid]
            if sigs[nid] in new_cache:
                # A node identical to one this prompt already ran (four LoadAudio of one file): ComfyUI
                # takes it from its cache and says "executed", with no "executing" and a null output.
                values[nid], ui = new_cache[sigs[nid]]
                await state(nid, running=False)
                await say("executed", {"node": nid, "display_node": nid, "output": ui, "prompt_id": pid})
                if ui:
                    outputs[nid] = ui
                continue
            await state(nid, running=True)
            await say("executing", {"node": nid, "display_node": nid, "prompt_id": pid})
            self.last_node = nid
            if self._interrupt.is_set():
                status = await self._interrupted(say, nid, node, outputs)
                break
            inputs = {k: values[str(v[0])][v[1]] if isinstance(v, list) else v for k, v in node["inputs"].items()}
            try:
                result, ui = await self._run_node(nid, node["class_type"], inputs, say)
            except _Interrupted:
                status = await self._interrupted(say, nid, node, outputs)
                break
            except NodeError as exc:
                await say("execution_error", _error_data(pid, nid, node["class_type"], exc, inputs, outputs), keep=True)
                status = "error"
                break
            self.stats.nodes_executed[node["class_type"]] += 1
            await state(nid, running=False)
            values[nid] = result
            new_cache[sigs[nid]] = (result, ui)
            if ui:
                outputs[nid] = ui
                await say("executed", {"node": nid, "display_node": nid, "output": ui, "prompt_id": pid})
        if status == "success":
            await say("execution_success", {"prompt_id": pid, "timestamp": _now_ms()}, keep=True)
            self.cache = new_cache
        await self._finish(item, status, log, outputs if status == "success" else {})

    def _garbles(self, text: str) -> bool:
        if text in self.texts_seen:
            return False
        self.texts_seen.append(text)
        return bool(self.config.garble_every) and (len(self.texts_seen) - 1) % self.config.garble_every == 0

    async def _run_node(self, nid: str, class_type: str, inputs: dict[str, Any], say: Any) -> Any:
        cfg = self.config
        if cfg.fail_node in (nid, class_type) and (not cfg.fail_marker or cfg.fail_marker in node_text(inputs)):
            raise NodeError(cfg.fail_type, cfg.fail_message)
        impl = NODES.get(class_type)
        if impl is None:
            raise NodeError("NotImplementedError", f"the fake cannot run {class_type}")
        ctx = Context(
            self.ctx.input_dir,
            self.ctx.output_dir,
            self.ctx.temp_dir,
            cfg.seconds_per_word,
            tuple(cfg.enemyx_models or ()),
            frozenset(f for files in cfg.model_files.values() for f in files) - set(cfg.drop_files),
            speech=cfg.speech,
            garble=class_type in SLOW_NODES and self._garbles(node_text(inputs)),
        )
        result = await asyncio.to_thread(impl, ctx, inputs)
        if "model_name" in inputs:  # the wildminder node keeps its model loaded after a run
            self.loaded_model = str(inputs["model_name"])
        if class_type in SLOW_NODES:
            assert self._interrupt is not None
            remaining = cfg.synth_seconds - (time.perf_counter() - self._began) - self._tail
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._interrupt.wait(), remaining)
            while (cfg.hold or (cfg.hold_until_queued and not self.pending)) and not self._interrupt.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._interrupt.wait(), 0.02)
            if self._interrupt.is_set():
                raise _Interrupted
            steps = int(inputs.get("inference_steps", inputs.get("diffusion_steps", 10)))
            await say("progress", {"value": steps, "max": steps, "node": nid})
            self._tts_done = time.perf_counter()
        return result

    async def _interrupted(self, say: Any, nid: str, node: Mapping[str, Any], outputs: Mapping[str, Any]) -> str:
        data = {"node_id": nid, "node_type": node["class_type"], "executed": list(outputs), "timestamp": _now_ms()}
        await say("execution_interrupted", data, keep=True)
        return "error"

    async def _finish(self, item: _Item, status: str, log: list[list[Any]], outputs: dict[str, Any]) -> None:
        # History and the running slot change together: a client never sees the prompt in neither.
        self.history[item.prompt_id] = {
            "prompt": item.as_list(),
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success", "messages": log},
            "meta": {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in outputs},
        }
        self.running = None
        self.last_node = None
        self.stats.prompts_executed += 1
        await self._status()
        self.stats.finished_at[item.prompt_id] = time.perf_counter()
        self.stats.finished_wall[item.prompt_id] = time.time()
        if self._tts_done and status == "success":
            self._tail = min(self.stats.finished_at[item.prompt_id] - self._tts_done, self.config.synth_seconds / 2)
        await self._send("executing", {"node": None, "prompt_id": item.prompt_id}, item.extra.get("client_id"))


class _Interrupted(Exception):
    pass


def _error_data(pid: str, nid: str, class_type: str, exc: NodeError, inputs: Mapping[str, Any],
                outputs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "prompt_id": pid,
        "node_id": nid,
        "node_type": class_type,
        "executed": list(outputs),
        "exception_message": exc.message,
        "exception_type": exc.exception_type,
        "traceback": traceback.format_tb(exc.__traceback__),
        "current_inputs": {
            k: [v if isinstance(v, str | int | float | bool) else repr(v)[:80]]
            for k, v in inputs.items()
        },
        "current_outputs": [nid],
        "timestamp": _now_ms(),
    }


def _order(prompt: Mapping[str, Any], outputs: list[str]) -> list[str]:
    """Each output node after everything it depends on."""
    seen: list[str] = []

    def visit(nid: str) -> None:
        if nid in seen:
            return
        for value in prompt[nid]["inputs"].values():
            if isinstance(value, list) and len(value) == 2:
                visit(str(value[0]))
        seen.append(nid)

    for out in outputs:
        visit(out)
    return seen


def _signature(prompt: Mapping[str, Any], nid: str, input_dir: Path) -> str:
    """Same class, same values, same upstream (and, for LoadAudio, the same file bytes): cached."""
    node = prompt[nid]
    parts: dict[str, Any] = {"class_type": node["class_type"]}
    for key, value in sorted(node["inputs"].items()):
        parts[key] = [_signature(prompt, str(value[0]), input_dir), value[1]] if isinstance(value, list) else value
    if node["class_type"] == "LoadAudio":
        path = input_dir / str(node["inputs"].get("audio"))
        parts["file"] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


async def _json_or_empty(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a fake ComfyUI server for tests")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--root", type=Path, default=None, help="folder for input/output/temp (default: a temp dir)")
    parser.add_argument("--synth-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    fake = FakeComfy(args.root, port=args.port, host=args.host, synth_seconds=args.synth_seconds)
    fake.start()
    print(f"fake ComfyUI listening on {fake.url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    fake.stop()


if __name__ == "__main__":
    main()
