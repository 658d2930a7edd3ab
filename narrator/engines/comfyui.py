"""The production engine: a ComfyUI server running a model's workflow (VibeVoice on a GPU).

One chunk is one prompt: upload the voices (once per content), bind text, voices and
settings into the model's workflow, queue it, follow it to the end, download the
audio, and take the prompt out of ComfyUI's history. ``render`` keeps a FLAC at the
model's rate as ComfyUI wrote it (checked, not decoded); ``synthesize`` decodes.

Voice slots: the chunk text names its speakers by slot (1..k, ``narrator.chunker.slots``)
and slot j carries the voice of the job speaker ``item.speakers[j - 1]``. A slot whose
speaker the job gave no voice, or that no speaker uses: with a default voice in the model
file (``[defaults] voice = "voices/x.flac"``, optionally ``voice_N`` for speaker N) the
slot gets that voice, uploaded like any other; without one, the slot's source node is left
out of the prompt, which works where the node's voice input is optional (Enemyx). The
wildminder node needs a voice for every speaker in the text, so its models ship one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import audio
from ..audio.types import Audio
from ..comfy import object_info
from ..comfy.client import ClientConfig, ComfyClient, Deadline, PromptRejected, outcome_error
from ..comfy.messages import PromptState, pick_audio
from ..comfy.object_info import ObjectInfo
from ..comfy.workflow import Target, Workflow, bind, check_params, load_workflow, prune, resolve_bindings, voice_param
from ..errors import AudioError, EngineFailed, InvalidRequest, JobCancelled, ModelError
from ..models import ModelSpec
from ..settings import Settings
from . import resolve_params
from .base import CancelledJobs, Clip, Engine, SynthesisInput, Voice

log = logging.getLogger(__name__)

WARM_UP_TEXT = "Hello. This short sentence warms the model up before the first chunk."
UNREACHABLE_HINT = "start it, or set NARRATOR_COMFY_URL to a running server"


class ComfyEngine(Engine):
    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        path = spec.workflow_path()
        if spec.engine != "comfyui" or path is None:
            raise ModelError(f"model {spec.name!r}: the comfyui engine needs engine = 'comfyui' and a workflow")
        self.spec = spec
        self.settings = settings
        self._workflow, self._targets = _bindings(spec)
        self._info = object_info.packaged()
        self._default_voices = _default_voices(spec)
        timeout = settings.comfy_timeout
        self._client = ComfyClient(
            settings.comfy_url,
            ClientConfig(
                request_timeout=min(30.0, timeout),
                unreachable_timeout=min(60.0, timeout),
                unreachable_hint=UNREACHABLE_HINT,
            ),
        )
        self._lock = threading.Lock()
        self._job: str | None = None
        self._prompt: str | None = None
        self._cancel = threading.Event()
        # Threads share the engine (in-process runs, a RunPod endpoint): a chunk waiting for the lock
        # must not start after its job was cancelled.
        self._cancelled = CancelledJobs()

    @property
    def client(self) -> ComfyClient:
        return self._client

    @classmethod
    def check_params(cls, spec: ModelSpec, params: Mapping[str, Any]) -> dict[str, Any]:
        """Each setting converted to its node input's type and checked against the node's range.

        The ranges are the pinned server's (the packaged object_info), found through the model
        file's bindings: a value the node would refuse is refused at admission, naming the node.
        """
        params = super().check_params(spec, params)
        if spec.engine != "comfyui" or spec.workflow_path() is None:
            raise ModelError(f"model {spec.name!r}: the comfyui engine needs engine = 'comfyui' and a workflow")
        _, targets = _bindings(spec)
        return check_params(spec, targets, params, object_info.packaged())

    # -- Engine ---------------------------------------------------------------------

    def synthesize(self, item: SynthesisInput) -> Audio:
        data, name = self._output(item)
        return self._decode(data, name, item)

    def render(self, item: SynthesisInput) -> Clip:
        data, name = self._output(item)
        # ComfyUI's SaveAudio writes FLAC at the model's rate: store those bytes as they are.
        seconds = audio.flac_seconds(data, self.spec.sample_rate)
        if seconds is not None:
            return Clip(data, seconds)
        return Clip.of(self._decode(data, name, item))

    def _output(self, item: SynthesisInput) -> tuple[bytes, str]:
        """The bytes and file name of the audio the prompt for ``item`` saved."""
        deadline = Deadline(self.settings.comfy_timeout)
        with self._lock:
            if item.job_id in self._cancelled:
                raise JobCancelled(f"job {item.job_id}: cancelled")
            # A fresh event before the job id: a cancel that sees this job sets this chunk's event.
            self._cancel = threading.Event()
            self._job, self._prompt = item.job_id, None
            try:
                return self._synthesize(item, deadline)
            finally:
                self._job = self._prompt = None

    def warm_up(self) -> None:
        """Wait for the server, then run one short prompt so the first job does not pay the model load."""
        self._client.wait_ready(Deadline(self.settings.comfy_timeout))
        try:
            text = self.spec.speaker_format.format(n=1, text=WARM_UP_TEXT)
        except (KeyError, IndexError, ValueError):
            text = WARM_UP_TEXT
        # A job's settings are resolved at admission; warm-up has no job, so it resolves the defaults.
        self.synthesize(SynthesisInput(text=text, params=resolve_params(self.spec, {}), job_id="warm-up"))

    def cancel(self, job_id: str) -> None:
        if not job_id:
            return
        self._cancelled.add(job_id)
        if job_id != self._job:
            return
        self._cancel.set()
        prompt = self._prompt
        if prompt:
            self._client.abandon(prompt)
        log.debug("chunk cancelled", extra={"job_id": job_id, "prompt_id": prompt})

    def close(self) -> None:
        self._client.close()

    # -- one chunk --------------------------------------------------------------------

    def _synthesize(self, item: SynthesisInput, deadline: Deadline) -> tuple[bytes, str]:
        # The manifest's settings, resolved and checked once at admission (check_params): used as they are.
        params = item.params
        voices = self._voices(item.voices, item.speakers)
        names = {n: self._client.upload_voice(v.data, deadline) for n, v in voices.items()}
        try:
            state = self._run(item.text, names, params, deadline)
        except PromptRejected as exc:
            # The server lost files we uploaded earlier (a new container): upload again, once.
            if "LoadAudio" not in exc.node_classes() or not self._client.forget_uploads(names.values()):
                raise
            log.warning("voices missing on the server, uploading again", extra={"job_id": item.job_id})
            names = {n: self._client.upload_voice(v.data, deadline) for n, v in voices.items()}
            state = self._run(item.text, names, params, deadline)
        try:
            return self._download(state, deadline)
        finally:
            self._client.delete_history([state.prompt_id])

    def _run(self, text: str, names: Mapping[int, str], params: Mapping[str, Any], deadline: Deadline) -> PromptState:
        values: dict[str, Any] = {"text": text, **params}
        values.update({voice_param(n): name for n, name in names.items()})
        empty = [t.node_id for p, t in self._targets.items() if _is_voice(p) and p not in values]
        graph = bind(prune(self._workflow, empty, self._info), self._targets, values)
        state = self._client.run(graph, deadline, cancel=self._cancel, on_queued=self._queued)
        if self._cancel.is_set():
            self._client.delete_history([state.prompt_id])
            raise JobCancelled(f"job {self._job}: cancelled")
        return state

    def _queued(self, prompt_id: str) -> None:
        self._prompt = prompt_id
        if self._cancel.is_set():
            self._client.abandon(prompt_id)

    def _download(self, state: PromptState, deadline: Deadline) -> tuple[bytes, str]:
        error = outcome_error(state)
        if error is not None:
            raise error
        file = pick_audio(state.audio)
        if file is None:
            raise EngineFailed(f"model {self.spec.name!r}: the workflow finished without an audio output")
        log.debug("chunk audio", extra={"prompt_id": state.prompt_id, "file": file.filename})
        return self._client.view(file, deadline), file.filename

    def _decode(self, data: bytes, name: str, item: SynthesisInput) -> Audio:
        try:
            decoded = audio.decode(data, field=f"ComfyUI output {name}")
        except AudioError as exc:
            raise EngineFailed(f"chunk {item.index}: ComfyUI wrote unreadable audio: {exc}") from exc
        # Opus comes back at 48 kHz; everything downstream expects the model's rate.
        return audio.resample(decoded, self.spec.sample_rate)

    def _voices(self, given: Mapping[int, Voice], speakers: tuple[int, ...]) -> dict[int, Voice]:
        """Voice slot -> voice: slot j speaks for job speaker ``speakers[j - 1]`` (see ``chunker.slots``)."""
        slots = [n for n in range(1, self.spec.speakers + 1) if voice_param(n) in self._targets]
        extra = sorted(set(given) - set(slots))
        if extra:
            raise InvalidRequest(
                f"model {self.spec.name!r} takes voices for speakers {slots or 'none'}, not {extra}", field="voice"
            )
        if not slots:
            return {}
        return bind_slots(slots, speakers, given, self._default_voices)


def bind_slots(
    slots: list[int], speakers: tuple[int, ...], given: Mapping[int, Voice], defaults: Mapping[int, Voice]
) -> dict[int, Voice]:
    """The voice each of the workflow's voice ``slots`` carries.

    Slot j voices job speaker ``speakers[j - 1]``: the job's voice for that speaker, else the
    model's default for that speaker, else its default voice. The slots no speaker uses get
    the model's default (the node reads only the slots the text names, but every LoadAudio
    must name a file); without a default they stay empty and are left out of the prompt.
    """
    needed = range(1, len(speakers) + 1)
    if len(set(speakers)) != len(speakers) or min(speakers, default=1) < 1 or not set(needed) <= set(slots):
        raise InvalidRequest(f"speakers {list(speakers)} do not fit the voice slots {slots}", field="text")
    out: dict[int, Voice] = {}
    for slot in slots:
        if slot <= len(speakers):
            speaker = speakers[slot - 1]
            voice = given.get(speaker) or defaults.get(speaker) or defaults.get(1)
        else:
            voice = defaults.get(slot) or defaults.get(1)
        if voice is not None:
            out[slot] = voice
    return out


_bindings_cache: dict[tuple[str, str, int], tuple[Workflow, dict[str, Target]]] = {}
_bindings_lock = threading.Lock()


def _bindings(spec: ModelSpec) -> tuple[Workflow, dict[str, Target]]:
    """A ComfyUI model's workflow and its bindings resolved to nodes, read once per workflow file.

    Shared by the engines and :meth:`ComfyEngine.check_params`; nobody may change what it returns.
    """
    path = spec.workflow_path()
    if path is None:
        raise ModelError(f"model {spec.name!r} names no workflow")
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise ModelError(f"model {spec.name!r}: cannot read workflow {path.name}: {exc}") from exc
    key = (spec.name, str(path), stamp)
    with _bindings_lock:
        cached = _bindings_cache.get(key)
    if cached is None:
        workflow = load_workflow(path)
        info: ObjectInfo = object_info.packaged()
        # Node classes the shipped snapshot does not know are checked against the workflow alone.
        known = {n["class_type"] for n in workflow.values()} <= set(info)
        cached = workflow, resolve_bindings(spec, workflow, info if known else None)
        with _bindings_lock:
            _bindings_cache[key] = cached
    return cached


def _is_voice(param: str) -> bool:
    return param == "voice" or param.startswith("voice_")


def _default_voices(spec: ModelSpec) -> dict[int, Voice]:
    """``[defaults] voice = "voices/x.flac"`` (and ``voice_N``): files next to the model file, as WAV."""
    base = spec.source.parent if spec.source is not None else Path(".")
    out: dict[int, Voice] = {}
    for key, value in spec.defaults.items():
        if not _is_voice(key):
            continue
        speaker = 1 if key == "voice" else int(key.removeprefix("voice_")) if key[6:].isdigit() else 0
        path = base / str(value)
        if speaker < 1 or not path.is_file():
            raise ModelError(f"model {spec.name!r}: default {key} = {value!r} is not a voice file next to the model")
        try:
            # Treated like a job's voice: trimmed, peak-limited mono WAV at the model's rate.
            data = audio.normalise_voice(
                path.read_bytes(), field=f"default {key}", max_seconds=600.0, sample_rate=spec.sample_rate
            )
            out[speaker] = Voice(data)
        except AudioError as exc:
            raise ModelError(f"model {spec.name!r}: default {key}: {exc}") from exc
    return out
