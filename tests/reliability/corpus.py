"""The bad-input corpus, as data: what a producer might send, and the field its error must name.

Every case is a request (mostly a JSON object, as it arrives from JSON) that
admission must refuse with an :class:`~narrator.errors.InvalidRequest` whose
message starts with ``field`` (the dotted path of the offending input). Values
JSON cannot spell as such (NaN, Infinity, lone surrogates) are what
``json.loads`` makes of ``NaN``, ``Infinity`` and ``"\\ud800"``.

Audio inputs are made here, deterministically and cheaply: tones and silence
through soundfile, headers patched with struct, MP3 through lameenc.
"""

from __future__ import annotations

import base64
import io
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import lameenc
import numpy as np
import soundfile as sf

from narrator.settings import Settings

MB = 1024 * 1024
NAN = float("nan")
INF = float("inf")


@dataclass(frozen=True)
class Lazy:
    """A request too big to build at collection time (megabytes of text or audio)."""

    make: Callable[[], Any]


@dataclass(frozen=True)
class Case:
    id: str
    request: Any
    """The request, or a :class:`Lazy` that builds it."""
    field: str
    """The dotted path the error message starts with."""
    kind: str
    """What the case is about (the corpus must cover every kind the issue lists)."""
    handler_field: str | None = None
    """The field the RunPod handler names, where its input wrapper differs (``input``)."""

    def build(self) -> Any:
        return self.request.make() if isinstance(self.request, Lazy) else self.request


# -- audio --------------------------------------------------------------------------


def _encode(samples: np.ndarray, rate: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def tone(seconds: float = 1.0, rate: int = 16000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@cache
def good_wav() -> bytes:
    """One second of a 220 Hz tone, 16 kHz mono PCM: a voice admission accepts."""
    return _encode(tone(), 16000)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


# A canonical 44-byte header: fmt's sample rate at 24, byte rate at 28, data size at 40.
_RATE, _BYTE_RATE, _DATA_SIZE = 24, 28, 40


def lying_length_wav() -> bytes:
    """The header promises an hour of audio; the file holds one second."""
    return _patched(good_wav(), _DATA_SIZE, "<I", 3600 * 16000 * 2)


def lying_rate_wav() -> bytes:
    """One second of samples whose header says 4 Hz: 4000 s by the header's account."""
    return _patched(_patched(good_wav(), _RATE, "<I", 4), _BYTE_RATE, "<I", 8)


def zero_rate_wav() -> bytes:
    return _patched(_patched(good_wav(), _RATE, "<I", 0), _BYTE_RATE, "<I", 0)


def truncated_wav() -> bytes:
    data = good_wav()
    return data[: len(data) // 3]


def empty_wav() -> bytes:
    return _encode(np.zeros(0, dtype=np.float32), 16000)


def silent_wav() -> bytes:
    return _encode(np.zeros(16000, dtype=np.float32), 16000)


def nan_wav() -> bytes:
    return _encode(np.full(1600, np.nan, dtype=np.float32), 16000, subtype="FLOAT")


@cache
def hour_flac() -> bytes:
    """A genuine hour of 8 kHz silence: FLAC makes it about 90 KB."""
    return _encode(np.zeros(3600 * 8000, dtype=np.int16), 8000, "FLAC")


def hour_wav() -> bytes:
    """A genuine hour as WAV, 4 kHz unsigned 8-bit: 14 MB, under the byte cap; the header tells."""
    return _encode(np.full(3600 * 4000, 0.01, dtype=np.float32), 4000, "WAV", "PCM_U8")


@cache
def mp3() -> bytes:
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(64)
    encoder.set_in_sample_rate(16000)
    encoder.set_channels(1)
    encoder.set_quality(7)
    pcm = (tone() * 32767).astype(np.int16).tobytes()
    return bytes(encoder.encode(pcm) + encoder.flush())


def junk(n: int = 4096, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)


# -- SSRF -----------------------------------------------------------------------------

SSRF_URLS: list[tuple[str, str]] = [
    ("loopback", "http://127.0.0.1/voice.wav"),
    ("loopback-https", "https://127.0.0.1:8443/voice.wav"),
    ("localhost", "http://localhost/voice.wav"),
    ("localhost-trailing-dot", "http://localhost./voice.wav"),
    ("loopback-short", "http://127.1/voice.wav"),
    ("loopback-decimal", "http://2130706433/voice.wav"),
    ("loopback-octal", "http://0177.0.0.1/voice.wav"),
    ("loopback-hex", "http://0x7f000001/voice.wav"),
    ("loopback-hex-dotted", "http://0x7f.0x0.0x0.0x1/voice.wav"),
    ("loopback-mixed", "http://0x7f.1/voice.wav"),
    ("loopback-fullwidth", "http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/voice.wav"),
    ("ipv6-loopback", "http://[::1]/voice.wav"),
    ("ipv4-mapped-loopback", "http://[::ffff:127.0.0.1]/voice.wav"),
    ("ipv4-mapped-hex", "http://[::ffff:7f00:1]/voice.wav"),
    ("ipv4-compatible", "http://[::127.0.0.1]/voice.wav"),
    ("6to4-loopback", "http://[2002:7f00:1::]/voice.wav"),
    ("nat64-metadata", "http://[64:ff9b::a9fe:a9fe]/voice.wav"),
    ("unspecified", "http://0.0.0.0/voice.wav"),
    ("unspecified-zero", "http://0/voice.wav"),
    ("ipv6-unspecified", "http://[::]/voice.wav"),
    ("private-10", "http://10.0.0.1/voice.wav"),
    ("private-172", "http://172.16.0.1/voice.wav"),
    ("private-192", "http://192.168.1.1/voice.wav"),
    ("private-octal", "http://012.0.0.1/voice.wav"),
    ("private-decimal", "http://3232235777/voice.wav"),
    ("ipv6-unique-local", "http://[fd12:3456::1]/voice.wav"),
    ("ipv4-mapped-private", "http://[::ffff:10.0.0.1]/voice.wav"),
    ("link-local", "http://169.254.1.1/voice.wav"),
    ("ipv6-link-local", "http://[fe80::1]/voice.wav"),
    ("shared-cgnat", "http://100.64.0.1/voice.wav"),
    ("multicast", "http://224.0.0.1/voice.wav"),
    ("broadcast", "http://255.255.255.255/voice.wav"),
    ("metadata-aws", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
    ("metadata-aws-decimal", "http://2852039166/latest/meta-data/"),
    ("metadata-aws-ipv6", "http://[fd00:ec2::254]/latest/meta-data/"),
    ("metadata-ipv4-mapped", "http://[::ffff:a9fe:a9fe]/latest/meta-data/"),
    ("metadata-ecs", "http://169.254.170.2/v2/credentials"),
    ("metadata-gcp", "http://metadata.google.internal/computeMetadata/v1/"),
    ("metadata-alibaba", "http://100.100.100.200/latest/meta-data/"),
    ("userinfo-at-host", "http://example.com@127.0.0.1/voice.wav"),
    ("userinfo-credentials", "http://user:secret@example.com/voice.wav"),
    ("backslash-at", "http://127.0.0.1\\@example.com/voice.wav"),
    ("fragment-at", "http://127.0.0.1#@example.com/voice.wav"),
    ("scheme-file", "file:///etc/passwd"),
    ("scheme-gopher", "gopher://127.0.0.1:6379/_FLUSHALL"),
    ("scheme-ftp", "ftp://example.com/voice.wav"),
    ("scheme-relative", "//127.0.0.1/voice.wav"),
    ("no-host", "http:///voice.wav"),
    ("port-zero", "http://example.com:0/voice.wav"),
    ("space-in-host", "http://127.0.0.1 .example.com/voice.wav"),
]


# -- SSML -------------------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE speak ['
    '<!ENTITY a "lol lol lol lol lol lol lol lol lol lol">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
    + "]><speak>&i;</speak>"
)
XXE_FILE = '<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY x SYSTEM "file:///etc/passwd">]><speak>&x;</speak>'
XXE_URL = (
    '<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY x SYSTEM "http://169.254.169.254/latest/meta-data/">]>'
    "<speak>&x;</speak>"
)
XXE_PARAMETER = '<!DOCTYPE speak [<!ENTITY % p SYSTEM "http://169.254.169.254/"> %p;]><speak>hi</speak>'
DEEP_SSML = "<speak>" + "<p>" * 100_000 + "deep" + "</p>" * 100_000 + "</speak>"


# -- the corpus -----------------------------------------------------------------------


def _text(**extra: Any) -> dict[str, Any]:
    return {"text": "A perfectly good sentence to read aloud.", **extra}


def cases(settings: Settings) -> list[Case]:
    """The corpus for ``settings`` (its limits decide the oversize cases)."""
    wav64 = b64(good_wav())
    out: list[Case] = []

    def add(id: str, request: Any, field: str, kind: str, handler_field: str | None = None) -> None:
        out.append(Case(id, request, field, kind, handler_field))

    # The request itself
    add("not-an-object-list", [], "request", "wrong type", "input")
    add("not-an-object-string", "read this", "request", "wrong type", "input")
    add("not-an-object-null", None, "request", "wrong type", "input")
    add("no-text", {"model": "local"}, "text", "empty")

    # text
    add("text-empty", {"text": ""}, "text", "empty")
    add("text-whitespace", {"text": " \n\t \u3000 "}, "text", "whitespace")
    add("text-10mb", Lazy(lambda: {"text": "Words go here. " * (10 * MB // 15 + 1)}), "text", "oversize")
    add("text-nul", {"text": "Hello\x00world."}, "text", "control characters")
    add("text-ansi-escape", {"text": "Read \x1b[31mthis\x1b[0m in red."}, "text", "control characters")
    add("text-del", {"text": "Delete\x7f me."}, "text", "control characters")
    add("text-lone-high-surrogate", {"text": "Half a pair \ud83d here."}, "text", "surrogates")
    add("text-lone-low-surrogate", {"text": "\udc00 starts badly."}, "text", "surrogates")
    add("text-binary-latin1", {"text": junk().decode("latin-1")}, "text", "binary")
    add("text-binary-bytes", {"text": b"\xff\xfe\x00\x01" + junk(64)}, "text", "binary")
    add("text-emoji-only", {"text": "\U0001f600\U0001f600\U0001f600"}, "text", "empty")
    add("text-punctuation-only", {"text": "... ?! ---"}, "text", "empty")
    add("text-null", {"text": None}, "text", "wrong type")
    add("text-number", {"text": 42}, "text", "wrong type")
    add("text-list", {"text": ["one", "two"]}, "text", "wrong type")
    add("text-object", {"text": {"en": "hello"}}, "text", "wrong type")
    add("text-bool", {"text": True}, "text", "wrong type")

    # model
    add("model-number", _text(model=5), "model", "wrong type")
    add("model-list", _text(model=["local"]), "model", "wrong type")
    add("model-unknown", _text(model="no-such-model"), "model", "unknown model")
    add("model-traversal", _text(model="../local"), "model", "path traversal")
    add("model-slash", _text(model="vibevoice/large"), "model", "path traversal")
    add("model-absolute", _text(model="/etc/passwd"), "model", "path traversal")
    add("model-uppercase", _text(model="LOCAL"), "model", "unknown model")

    # voice (one voice: URL, base64 or stored name)
    add("voice-number", _text(voice=5), "voice", "wrong type")
    add("voice-object", _text(voice={"url": "x"}), "voice", "wrong type")
    add("voice-traversal", _text(voice="../../etc/passwd"), "voice", "path traversal")
    add("voice-traversal-encoded", _text(voice="..%2F..%2Fetc%2Fpasswd"), "voice", "path traversal")
    add("voice-traversal-windows", _text(voice="..\\..\\windows\\win.ini"), "voice", "path traversal")
    add("voice-traversal-in-name", _text(voice="narrator-default/../../../x"), "voice", "path traversal")
    add("voice-unknown-name", _text(voice="no-such-voice"), "voice", "unknown voice")
    add("voice-and-reference", _text(voice="narrator-default", reference_audio=wav64), "request", "conflict")

    # voices (speaker number -> voice)
    add("voices-string", _text(voices="narrator-default"), "voices", "wrong type")
    add("voices-list", _text(voices=["narrator-default"]), "voices", "wrong type")
    add("voices-value-number", _text(voices={"1": 5}), "voices.1", "wrong type")
    add("voices-key-zero", _text(voices={"0": wav64}), "voices", "unknown speaker")
    add("voices-key-17", _text(voices={"17": wav64}), "voices", "unknown speaker")
    add("voices-key-huge", _text(voices={"99999999999999999999": wav64}), "voices", "unknown speaker")
    add("voices-key-traversal", _text(voices={"../1": wav64}), "voices", "path traversal")
    add("voices-key-beyond-model", _text(voices={"2": wav64}), "voices.2", "unknown speaker")
    add(
        "voices-key-beyond-vibevoice",
        _text(model="vibevoice-large", voices={"5": wav64}),
        "voices.5",
        "unknown speaker",
    )
    add("voices-value-traversal", _text(model="vibevoice-large", voices={"2": "../../x"}), "voices.2", "path traversal")

    # speakers (script names -> speaker numbers)
    add("speakers-string", _text(speakers="Alice"), "speakers", "wrong type")
    add("speakers-value-string", _text(speakers={"Alice": "one"}), "speakers.Alice", "wrong type")
    add("speakers-value-float", _text(speakers={"Alice": 1.5}), "speakers.Alice", "wrong type")
    add("speakers-value-bool", _text(speakers={"Alice": True}), "speakers.Alice", "wrong type")
    add("speakers-value-nan", _text(speakers={"Alice": NAN}), "speakers.Alice", "NaN/Infinity")
    add("speakers-zero", _text(speakers={"Alice": 0}), "speakers", "negative and huge numbers")
    add("speakers-negative", _text(speakers={"Alice": -1}), "speakers", "negative and huge numbers")
    add("speakers-beyond-model", _text(speakers={"Alice": 1, "Bob": 2}), "speakers.Bob", "unknown speaker")
    add(
        "script-speaker-beyond-model",
        {"text": "Speaker 5: Hello there, everyone.", "model": "vibevoice-large"},
        "text",
        "unknown speaker",
    )
    add(
        "ssml-voice-beyond-model",
        {"text": '<speak><voice name="Ann">Hello.</voice><voice name="Ben">Hi.</voice></speak>'},
        "text",
        "unknown speaker",
    )

    # reference_audio (seed-era base64 WAV)
    add("reference-number", _text(reference_audio=5), "reference_audio", "wrong type")
    add("reference-list", _text(reference_audio=[wav64]), "reference_audio", "wrong type")
    add("reference-bad-base64", _text(reference_audio="!!!not base64!!!"), "reference_audio", "bad base64")
    add("reference-bad-padding", _text(reference_audio=wav64[:-3]), "reference_audio", "bad base64")
    add("reference-data-uri-bad", _text(reference_audio="data:audio/wav;base64,@@@@"), "reference_audio", "bad base64")
    add("reference-whitespace", _text(reference_audio="   "), "reference_audio", "bad base64")
    over_voice = settings.max_voice_bytes * 4 // 3 + 8
    add("reference-oversize", Lazy(lambda: _text(reference_audio="A" * over_voice)), "reference_audio", "oversize")
    add("reference-junk", _text(reference_audio=b64(junk())), "reference_audio", "binary")
    add("reference-text-file", _text(reference_audio=b64(b"hello, I am not audio\n" * 50)), "reference_audio", "binary")
    add("reference-truncated-wav", _text(reference_audio=b64(truncated_wav())), "reference_audio", "truncated WAV")
    add("reference-lying-length", _text(reference_audio=b64(lying_length_wav())), "reference_audio", "lying header")
    add("reference-lying-rate", _text(reference_audio=b64(lying_rate_wav())), "reference_audio", "lying header")
    add("reference-zero-rate", _text(reference_audio=b64(zero_rate_wav())), "reference_audio", "lying header")
    add("reference-empty-wav", _text(reference_audio=b64(empty_wav())), "reference_audio", "empty")
    add("reference-silent-wav", _text(reference_audio=b64(silent_wav())), "reference_audio", "empty")
    add("reference-nan-samples", _text(reference_audio=b64(nan_wav())), "reference_audio", "NaN/Infinity")
    add("reference-hour-flac", Lazy(lambda: _text(reference_audio=b64(hour_flac()))), "reference_audio",
        "1-hour reference")
    add("reference-hour-wav", Lazy(lambda: _text(reference_audio=b64(hour_wav()))), "reference_audio",
        "1-hour reference")
    add(
        "reference-mp3-declared-wav",
        _text(reference_audio="data:audio/wav;base64," + b64(mp3())),
        "reference_audio",
        "MP3 named WAV",
    )
    add(
        "reference-declared-html",
        _text(reference_audio="data:text/html;base64," + b64(b"<script>alert(1)</script>")),
        "reference_audio",
        "MP3 named WAV",
    )

    # reference_audio_url and every SSRF spelling (also through voice and voices)
    add("reference-url-number", _text(reference_audio_url=5), "reference_audio_url", "wrong type")
    add("reference-url-list", _text(reference_audio_url=["http://example.com/a.wav"]), "reference_audio_url",
        "wrong type")
    for name, url in SSRF_URLS:
        add(f"ssrf-{name}", _text(reference_audio_url=url), "reference_audio_url", "SSRF")
    add("ssrf-via-voice", _text(voice="http://169.254.169.254/latest/meta-data/"), "voice", "SSRF")
    add(
        "ssrf-via-voices",
        _text(model="vibevoice-large", voices={"2": "http://[::ffff:127.0.0.1]:6379/"}),
        "voices.2",
        "SSRF",
    )

    # voice_settings.*
    add("settings-string", _text(voice_settings="fast"), "voice_settings", "wrong type")
    add("settings-list", _text(voice_settings=[1.0]), "voice_settings", "wrong type")
    add("temperature-string", _text(voice_settings={"temperature": "hot"}), "voice_settings.temperature",
        "wrong type")
    add("temperature-nan", _text(voice_settings={"temperature": NAN}), "voice_settings.temperature", "NaN/Infinity")
    add("temperature-nan-string", _text(voice_settings={"temperature": "NaN"}), "voice_settings.temperature",
        "NaN/Infinity")
    add("temperature-infinity", _text(voice_settings={"temperature": INF}), "voice_settings.temperature",
        "NaN/Infinity")
    add("temperature-zero", _text(voice_settings={"temperature": 0}), "voice_settings.temperature",
        "negative and huge numbers")
    add("speed-negative-infinity", _text(voice_settings={"speed": -INF}), "voice_settings.speed", "NaN/Infinity")
    add("speed-negative", _text(voice_settings={"speed": -1}), "voice_settings.speed", "negative and huge numbers")
    add("speed-huge", _text(voice_settings={"speed": 1e308}), "voice_settings.speed", "negative and huge numbers")
    add("speed-bool", _text(voice_settings={"speed": True}), "voice_settings.speed", "wrong type")
    add("seed-negative", _text(voice_settings={"seed": -1}), "voice_settings.seed", "negative and huge numbers")
    add("seed-huge", _text(voice_settings={"seed": 2**64}), "voice_settings.seed", "negative and huge numbers")
    add("seed-float", _text(voice_settings={"seed": 4.5}), "voice_settings.seed", "wrong type")
    add("seed-unsupported", _text(voice_settings={"seed": 7}), "voice_settings.seed", "unknown field")
    add("steps-huge", _text(voice_settings={"steps": 10**30}), "voice_settings.steps", "negative and huge numbers")
    add("steps-list", _text(voice_settings={"steps": [20]}), "voice_settings.steps", "wrong type")
    add("cfg-scale-object", _text(voice_settings={"cfg_scale": {}}), "voice_settings.cfg_scale", "wrong type")
    add("top-p-over", _text(voice_settings={"top_p": 1.5}), "voice_settings.top_p", "negative and huge numbers")
    add("settings-unknown", _text(voice_settings={"pitch": 3}), "voice_settings.pitch", "unknown field")

    # output.*
    add("output-string", _text(output="mp3"), "output", "wrong type")
    add("output-format-unknown", _text(output={"format": "aac"}), "output.format", "wrong type")
    add("output-format-number", _text(output={"format": 5}), "output.format", "wrong type")
    add("output-format-traversal", _text(output={"format": "../../x"}), "output.format", "path traversal")
    add("output-rate-string", _text(output={"sample_rate": "high"}), "output.sample_rate", "wrong type")
    add("output-rate-tiny", _text(output={"sample_rate": 1}), "output.sample_rate", "negative and huge numbers")
    add("output-rate-huge", _text(output={"sample_rate": 10**12}), "output.sample_rate", "negative and huge numbers")
    add("output-rate-nan", _text(output={"sample_rate": NAN}), "output.sample_rate", "NaN/Infinity")
    add("output-audio-b64-string", _text(output={"audio_b64": "maybe"}), "output.audio_b64", "wrong type")
    add("output-expires-negative", _text(output={"url_expires": -1}), "output.url_expires",
        "negative and huge numbers")
    add("output-expires-too-long", _text(output={"url_expires": settings.presign_max_seconds + 1}),
        "output.url_expires", "negative and huge numbers")
    add("output-expires-infinity", _text(output={"url_expires": INF}), "output.url_expires", "NaN/Infinity")
    add("output-expires-bool", _text(output={"url_expires": True}), "output.url_expires", "wrong type")
    add("output-unknown", _text(output={"bucket": "other"}), "output.bucket", "unknown field")
    add("output-key-traversal", _text(output={"key": "../../etc/cron.d/x"}), "output.key", "path traversal")

    # timeout, normalize, ssml, language
    add("timeout-string", _text(timeout="soon"), "timeout", "wrong type")
    add("timeout-list", _text(timeout=[10]), "timeout", "wrong type")
    add("timeout-negative", _text(timeout=-5), "timeout", "negative and huge numbers")
    add("timeout-zero", _text(timeout=0), "timeout", "negative and huge numbers")
    add("timeout-huge", _text(timeout=1e308), "timeout", "negative and huge numbers")
    add("timeout-nan", _text(timeout=NAN), "timeout", "NaN/Infinity")
    add("timeout-infinity", _text(timeout=INF), "timeout", "NaN/Infinity")
    add("normalize-string", _text(normalize="maybe"), "normalize", "wrong type")
    add("normalize-number", _text(normalize=2), "normalize", "wrong type")
    add("ssml-string", _text(ssml="sometimes"), "ssml", "wrong type")
    add("ssml-list", _text(ssml=[True]), "ssml", "wrong type")
    add("language-number", _text(language=5), "language", "wrong type")
    add("language-word", _text(language="english"), "language", "wrong type")
    add("language-traversal", _text(language="../en"), "language", "path traversal")
    add("language-unsupported", _text(language="de"), "language", "unknown model")

    # unknown fields
    add("unknown-top-level", _text(colour="blue"), "colour", "unknown field")
    add("unknown-job-id", _text(job_id="../../jobs/other"), "job_id", "unknown field")
    add("unknown-output-key", _text(output_key="jobs/x/output.wav"), "output_key", "unknown field")
    add("unknown-proto", _text(__proto__={"admin": True}), "__proto__", "unknown field")
    add("unknown-case", {"Text": "Hello there."}, "text", "unknown field")

    # SSML
    add("ssml-billion-laughs", {"text": BILLION_LAUGHS}, "text", "SSML bomb")
    add("ssml-external-entity-file", {"text": XXE_FILE}, "text", "SSML bomb")
    add("ssml-external-entity-url", {"text": XXE_URL}, "text", "SSML bomb")
    add("ssml-parameter-entity", {"text": XXE_PARAMETER}, "text", "SSML bomb")
    add("ssml-deep-nesting", {"text": DEEP_SSML}, "text", "SSML bomb")
    add("ssml-unknown-tag", {"text": "<speak><blink>Hello.</blink></speak>"}, "text", "SSML bomb")
    add("ssml-audio-tag", {"text": '<speak><audio src="http://169.254.169.254/"/>Hi.</speak>'}, "text", "SSML bomb")
    add("ssml-malformed", {"text": "<speak>Hello <break"}, "text", "SSML bomb")
    add("ssml-forced-not-xml", {"text": "Hello there.", "ssml": True}, "text", "SSML bomb")
    add("ssml-huge-break", {"text": '<speak>Hi <break time="99999999s"/> there.</speak>'}, "text", "SSML bomb")
    return out


#: Every kind the issue asks the corpus to cover.
KINDS = frozenset(
    {
        "empty", "whitespace", "oversize", "control characters", "surrogates", "binary", "wrong type",
        "NaN/Infinity", "negative and huge numbers", "unknown field", "bad base64", "truncated WAV",
        "lying header", "1-hour reference", "MP3 named WAV", "SSML bomb", "unknown model", "unknown speaker",
        "SSRF", "path traversal",
    }
)

#: Fields of the request, each of which must have at least one wrong-type case.
FIELDS = (
    "text", "model", "voice", "voices", "speakers", "reference_audio", "reference_audio_url", "voice_settings",
    "voice_settings.temperature", "voice_settings.speed", "voice_settings.seed", "voice_settings.steps",
    "voice_settings.cfg_scale", "output", "output.format", "output.sample_rate", "output.audio_b64",
    "output.url_expires", "timeout", "normalize", "ssml", "language",
)

#: A handful for the round trip through a worker (each costs one): (case id, why it is representative).
FOREIGN = ("text-empty", "model-unknown", "ssrf-metadata-aws", "reference-bad-base64", "unknown-top-level",
           "voices-key-beyond-model")
