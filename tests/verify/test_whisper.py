"""WhisperRecogniser on a real (tiny, built here) CTranslate2 Whisper model, offline.

No Whisper weights can be downloaded here, so the fixture builds one with transformers'
own classes, the way a real checkpoint is made: a WhisperForConditionalGeneration with
tiny dimensions but the real multilingual vocabulary layout (50257 byte-level BPE text
tokens, the special and 100 language tokens, 1501 timestamp tokens: 51866 as large-v3),
converted by ctranslate2's TransformersConverter, with tokenizer.json and
preprocessor_config.json beside it. Its decoder is set so that it writes
``<|0.00|> hello world <|1.00|> <|endoftext|>`` whatever it hears: token embeddings and
every decoder block's output are zero, so the residual stream is the position embedding
alone, and the output projection maps each position to one token. The encoder and the
cross-attention queries and keys stay random (seeded), so the word times come from
faster-whisper's real cross-attention alignment (DTW) of those two words against the
audio: they are not meaningful, but they are bounded, ordered and depend on the audio.
"""

from __future__ import annotations

import importlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from narrator.audio.dsp import resample
from narrator.engines.base import SynthesisInput
from narrator.engines.embedded import EmbeddedEngine
from narrator.errors import ConfigurationError, EngineFailed, ModelError
from narrator.models import ModelSpec
from narrator.verify.recogniser import RATE, Transcript, Word
from narrator.verify.whisper import WhisperRecogniser

D_MODEL = 64
TEXT_TOKENS = 50257
WORDS = ("hello", "world")


def _language_codes() -> tuple[str, ...]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # type: ignore[import-untyped]

    return tuple(_LANGUAGE_CODES)


def _specials() -> list[str]:
    """Whisper's special tokens in its order, with large-v3's 100 languages (alphabetical here)."""
    languages = [f"<|{code}|>" for code in _language_codes()]
    tasks = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    return ["<|endoftext|>", "<|startoftranscript|>", *languages, *tasks]


def _build_tokenizer(folder: Path) -> dict[str, int]:
    """A byte-level BPE tokenizer with Whisper's layout; returns the ids the decoder writes."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers  # type: ignore[import-untyped]

    transformers: Any = importlib.import_module("transformers")  # its stubs are partial

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        left = "Ġ"
        for char in word:
            merges.append((left, char))
            left += char
            vocab.setdefault(left, len(vocab))
    for i in range(len(vocab), TEXT_TOKENS - 1):  # unreachable fillers
        vocab[f"<unused{i}>"] = i
    # CTranslate2 4.7+ (PR #2000) takes a Whisper vocabulary holding the empty token for a
    # multilingual model; without it the model is English-only and the prompt has no
    # language or task token.
    vocab[""] = TEXT_TOKENS - 1
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = _specials()
    timestamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in specials])
    tokenizer.add_tokens([AddedToken(t, special=False) for t in timestamps])
    # tokenizer.json for faster-whisper; tokenizer_config.json for the converter's AutoTokenizer
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=specials[1:],
    ).save_pretrained(folder)
    ids = {word: tokenizer.token_to_id("Ġ" + word) for word in WORDS}
    ids["eot"] = tokenizer.token_to_id("<|endoftext|>")
    ids["t0"] = tokenizer.token_to_id("<|0.00|>")
    ids["t1"] = tokenizer.token_to_id("<|1.00|>")
    ids["size"] = tokenizer.get_vocab_size()
    assert ids["t0"] == TEXT_TOKENS + len(specials) == 50365 and ids["size"] == 51866
    return ids


def _build_model(folder: Path, ids: dict[str, int]) -> None:
    transformers: Any = importlib.import_module("transformers")
    torch.manual_seed(0)
    config = transformers.WhisperConfig(
        vocab_size=ids["size"],
        num_mel_bins=80,
        d_model=D_MODEL,
        encoder_layers=2,
        encoder_attention_heads=2,
        decoder_layers=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=ids["eot"],
        bos_token_id=ids["eot"],
        eos_token_id=ids["eot"],
        decoder_start_token_id=ids["eot"] + 1,
        tie_word_embeddings=False,  # the projection is set apart from the (zero) embeddings
    )
    model = transformers.WhisperForConditionalGeneration(config).eval()
    # The converter reads these from the generation config (suppress_ids in config.json).
    model.generation_config.suppress_tokens = []
    model.generation_config.begin_suppress_tokens = [ids["eot"]]
    decoder = model.model.decoder
    # The prompt is <|startoftranscript|> <|en|> <|transcribe|> (positions 0-2): position
    # p's output is the token after it, so p = 2 writes the first token of the transcript.
    script = {2: ids["t0"], 3: ids["hello"], 4: ids["world"], 5: ids["t1"], 6: ids["eot"]}
    with torch.no_grad():
        decoder.embed_tokens.weight.zero_()
        # Without position embeddings the encoder's output is the audio's alone, so the
        # cross-attention (hence the word times) follows the audio, not the frame index.
        model.model.encoder.embed_positions.weight.zero_()
        for layer in decoder.layers:
            for out in (layer.self_attn.out_proj, layer.encoder_attn.out_proj, layer.fc2):
                out.weight.zero_()
                out.bias.zero_()
        decoder.embed_positions.weight.zero_()
        model.proj_out.weight.zero_()
        for position, token in script.items():
            decoder.embed_positions.weight[position, position] = 1.0
            model.proj_out.weight[token, position] = 10.0
    model.save_pretrained(folder)
    transformers.WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)


def _convert(source: Path, out: Path) -> None:
    from ctranslate2.converters import TransformersConverter  # type: ignore[import-untyped]

    class Converter(TransformersConverter):  # type: ignore[misc]
        # ctranslate2 4.8 passes from_pretrained(dtype=...), the name transformers took in
        # 4.56; the pinned 4.51 still calls it torch_dtype.
        def load_model(self, model_class: Any, name: str, **kwargs: Any) -> Any:
            if "dtype" in kwargs:
                kwargs["torch_dtype"] = kwargs.pop("dtype")
            return model_class.from_pretrained(name, **kwargs)

    Converter(str(source), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(str(out))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    began = time.perf_counter()
    root = tmp_path_factory.mktemp("whisper")
    source, out = root / "hf", root / "ct2"
    ids = _build_tokenizer(source)
    _build_model(source, ids)
    _convert(source, out)
    print(f"\ntiny whisper model built and converted in {time.perf_counter() - began:.2f} s")
    return out


@pytest.fixture(scope="module")
def recogniser(model_path: Path) -> WhisperRecogniser:
    return WhisperRecogniser(model_path, device="cpu")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Real speech (Piper, the embedded engine) at 16 kHz: about 2.4 s, not the same each run."""
    engine = EmbeddedEngine(ModelSpec(name="piper", engine="embedded", sample_rate=22050))
    audio = engine.synthesize(SynthesisInput(text="Hello world, this is a short test."))
    samples: np.ndarray = resample(audio, RATE).samples
    return samples


def _check_times(transcript: Transcript, duration: float) -> None:
    assert isinstance(transcript, Transcript)
    assert all(isinstance(w, Word) and isinstance(w.start, float) for w in transcript.words)
    for word in transcript.words:
        assert 0.0 <= word.start <= word.end <= duration + 0.02  # 20 ms: Whisper's time step
    for before, after in zip(transcript.words, transcript.words[1:], strict=False):
        assert before.end <= after.start


def test_transcribes_speech_with_word_times(recogniser: WhisperRecogniser, speech: np.ndarray) -> None:
    first = speech[: 2 * RATE]
    began = time.perf_counter()
    transcript = recogniser.transcribe(first, "en-GB")
    print(f"\ntranscribed 2 s in {time.perf_counter() - began:.2f} s: {transcript}")

    # The decoder writes exactly these words, whatever the audio: the model really ran
    # (encoder, decoder with Whisper's timestamp rules, word alignment), end to end.
    assert [w.text for w in transcript.words] == ["hello", "world"]
    assert transcript.text == "hello world"
    _check_times(transcript, 2.0)
    assert transcript.words[-1].end > 0
    # Greedy decoding: the same audio gives the same answer.
    assert recogniser.transcribe(first, "en") == transcript
    # Other audio, other word times: the times come from this audio's cross-attention.
    second = speech[RATE // 2 : RATE // 2 + 2 * RATE]
    later = recogniser.transcribe(second, "en")
    _check_times(later, len(second) / RATE)
    assert later != transcript


def test_silence_and_empty_audio(recogniser: WhisperRecogniser) -> None:
    assert recogniser.transcribe(np.zeros(0, dtype=np.float32), "en") == Transcript(())
    # float64 is converted; flat audio may give no words (zero-length segments are dropped).
    _check_times(recogniser.transcribe(np.zeros(RATE, dtype=np.float64), "en"), 1.0)


def test_threads_share_the_model(recogniser: WhisperRecogniser, speech: np.ndarray) -> None:
    clips = [speech[i * 4000 : i * 4000 + 2 * RATE] for i in range(4)]
    alone = [recogniser.transcribe(c, "en") for c in clips]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda c: recogniser.transcribe(c, "en"), clips))
    assert together == alone


def test_a_language_it_does_not_speak_fails_as_an_engine_error(recogniser: WhisperRecogniser) -> None:
    with pytest.raises(EngineFailed, match="whisper"):
        recogniser.transcribe(np.zeros(RATE, dtype=np.float32), "xx")


def test_speaks_whisper_languages(recogniser: WhisperRecogniser) -> None:
    assert recogniser.speaks("en-GB")
    assert recogniser.speaks("en")
    assert recogniser.speaks("de")
    assert recogniser.speaks("yue")
    assert not recogniser.speaks("xx")
    assert not recogniser.speaks("")


def test_identity_and_no_alignment(recogniser: WhisperRecogniser, speech: np.ndarray) -> None:
    assert recogniser.name == "whisper"
    assert recogniser.device == "cpu"
    assert recogniser.aligns is False
    assert recogniser.align(speech, ["hello", "world"], "en") is None


def test_auto_device_is_cpu_without_a_gpu(model_path: Path) -> None:
    import ctranslate2  # type: ignore[import-untyped]

    assert ctranslate2.get_cuda_device_count() == 0
    assert WhisperRecogniser(model_path).device == "cpu"


def test_missing_model_path_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigurationError) as caught:
        WhisperRecogniser(missing)
    assert caught.value.variable == "NARRATOR_VERIFY_WHISPER_MODEL"
    assert str(caught.value).startswith("NARRATOR_VERIFY_WHISPER_MODEL:")
    assert str(missing) in str(caught.value)


def test_a_folder_without_a_model_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigurationError, match="model.bin") as caught:
        WhisperRecogniser(tmp_path)
    assert caught.value.variable == "NARRATOR_VERIFY_WHISPER_MODEL"
    assert str(tmp_path) in str(caught.value)


def test_a_broken_model_file_is_a_model_error(model_path: Path, tmp_path: Path) -> None:
    for name in ("config.json", "tokenizer.json", "preprocessor_config.json", "vocabulary.json"):
        (tmp_path / name).write_bytes((model_path / name).read_bytes())
    (tmp_path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="whisper could not load"):
        WhisperRecogniser(tmp_path, device="cpu")


def test_never_reaches_the_hub(model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import faster_whisper.transcribe as fw  # type: ignore[import-untyped]

    def offline(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"went to the Hub: {args} {kwargs}")

    monkeypatch.setattr(fw, "download_model", offline)
    monkeypatch.setattr(fw.tokenizers.Tokenizer, "from_pretrained", offline)
    assert WhisperRecogniser(model_path, device="cpu").speaks("en")
    # Without tokenizer.json faster-whisper would fetch one: refused before it can.
    for name in ("model.bin", "config.json", "vocabulary.json"):
        (tmp_path / name).write_bytes((model_path / name).read_bytes())
    with pytest.raises(ConfigurationError, match="tokenizer.json"):
        WhisperRecogniser(tmp_path, device="cpu")


def test_settings_choose_whisper_when_its_model_is_configured(model_path: Path) -> None:
    from narrator.settings import Settings
    from narrator.verify.load import on_gpu, recogniser_for, recogniser_kind

    settings = Settings(verify_whisper_model=str(model_path))
    assert recogniser_kind(settings) == "whisper"
    chosen = recogniser_for(settings)
    assert isinstance(chosen, WhisperRecogniser) and chosen.device == "cpu"
    assert recogniser_for(settings) is chosen  # built once per process
    assert not on_gpu(settings)  # no GPU here: the CPU workers check
    assert recogniser_kind(Settings()) == "pocketsphinx"
    assert recogniser_kind(settings.with_(verify_recogniser="pocketsphinx")) == "pocketsphinx"


@pytest.mark.parametrize(
    ("changes", "variable"),
    [({"verify_recogniser": "whisper"}, "NARRATOR_VERIFY_WHISPER_MODEL"),
     ({"verify_recogniser": "vosk"}, "NARRATOR_VERIFY_RECOGNISER")],
)
def test_settings_that_cannot_work_name_the_variable(changes: dict[str, str], variable: str) -> None:
    from narrator.errors import ConfigurationError
    from narrator.settings import Settings
    from narrator.verify.load import recogniser_kind

    with pytest.raises(ConfigurationError) as caught:
        recogniser_kind(Settings(**changes))
    assert caught.value.variable == variable and variable in str(caught.value)
