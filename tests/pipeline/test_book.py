"""A book end to end on the embedded voice: an EPUB in, an M4B with chapter marks and tags out.

The M4B is read back with mutagen, a reader independent of the writer (PyAV). In-process (no
broker): the same steps a worker runs.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import mutagen.mp4
import pytest
import soundfile as sf

import narrator
from narrator.errors import InvalidRequest
from narrator.settings import PROJECT_WORKFLOWS, Settings
from narrator.storage import open_store
from tests.audio.test_m4b import jpeg
from tests.documents.build import AUSTEN, DICKENS, POE, Epub, Page, paras
from tests.support.procs import ROOT, WorkerPool

TITLES = ["The Tell-Tale Heart", "A Truth Universally Acknowledged", "Über den Fluß"]


def book(cover: bool = True) -> bytes:
    pages = [Page("cover.xhtml", "<img src='images/cover.jpg' alt='cover'/>", properties="")] if cover else []
    pages += [Page(f"c{i}.xhtml", f"<h1>{t}</h1>{paras(line, 2)}")
              for i, (t, line) in enumerate(zip(TITLES, [POE, AUSTEN, DICKENS], strict=True), start=1)]
    nav = [(f"c{i}.xhtml", t, 1) for i, t in enumerate(TITLES, start=1)]
    return Epub(pages=pages, title="Three Openings", creators=("Poe", "Austen"), nav=nav,
                cover=jpeg() if cover else None).build()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    folder = tmp_path / "workflows"
    folder.mkdir()
    text = (PROJECT_WORKFLOWS / "local.toml").read_text()
    (folder / "local.toml").write_text(text.replace("max_chunk_chars = 600", "max_chunk_chars = 200"))
    return Settings(storage_url=(tmp_path / "store").as_uri(), workflows_dir=folder, verify="off")


def submit(settings: Settings, **request: Any) -> Any:
    request.setdefault("document", base64.b64encode(book()).decode())
    handle = narrator.submit(request, settings)
    return handle, handle.wait(timeout=300)


def test_an_epub_becomes_an_m4b_with_chapter_marks_and_tags(settings: Settings, tmp_path: Path) -> None:
    handle, result = submit(settings, output={"format": "m4b"})
    assert (result.format, result.title, result.author) == ("m4b", "Three Openings", "Poe & Austen")
    assert [(c.number, c.title) for c in result.chapters] == list(enumerate(TITLES, start=1))
    starts = [c.start for c in result.chapters]
    assert starts[0] == 0 and starts == sorted(starts) and len(set(starts)) == 3
    assert sum(c.duration for c in result.chapters) == pytest.approx(result.duration_seconds, abs=0.05)
    path = tmp_path / "book.m4b"
    path.write_bytes(handle.audio_bytes())
    m4b = mutagen.mp4.MP4(path)
    assert m4b.tags is not None and m4b.tags["\xa9nam"] == ["Three Openings"]
    assert m4b.tags["\xa9ART"] == ["Poe & Austen"] and "covr" in m4b.tags
    assert m4b.info.length == pytest.approx(result.duration_seconds, abs=0.1)
    assert m4b.chapters is not None
    marks = [(c.title, c.start) for c in m4b.chapters]
    assert [t for t, _ in marks] == TITLES
    for (_, start), chapter in zip(marks, result.chapters, strict=True):
        assert start == pytest.approx(chapter.start, abs=0.05)  # an AAC frame is 1024 samples: 46 ms


def test_some_chapters_titles_unspoken_and_a_file_per_chapter(settings: Settings) -> None:
    handle, result = submit(settings, chapters="2-3", book={"speak_titles": False},
                            output={"format": "wav", "split": "chapters"})
    assert [(c.number, c.title) for c in result.chapters] == [(2, TITLES[1]), (3, TITLES[2])]
    manifest = handle.job_store.manifest()
    assert not manifest.chunks[0].text.startswith(TITLES[1])  # the text starts, not the title
    store = open_store(settings)
    for chapter in result.chapters:
        samples, rate = sf.read(io.BytesIO(store.get_bytes(chapter.key)))
        # Joined on its own (no pause before it): as long as its span in the whole book, near enough.
        assert abs(len(samples) / rate - chapter.duration) < 1.5
        assert "WEBVTT" in store.get_bytes(chapter.key.rsplit(".", 1)[0] + ".vtt").decode()


def test_titles_are_spoken_first_by_default(settings: Settings) -> None:
    handle, _ = submit(settings)
    first = handle.job_store.manifest().chunks[0]
    assert first.text.startswith(TITLES[0])


@pytest.mark.parametrize(("request_", "field"), [
    ({"document": base64.b64encode(b"PK\x03\x04 not really a zip").decode(), "document_format": "epub"}, "document"),
    ({"document": "%%% not base64 %%%"}, "document"),
    ({"document": "store:books/missing.epub"}, "document"),
    ({"chapters": "9"}, "chapters"),
    ({"text": "Both text and a book."}, "text"),
])
def test_a_bad_book_is_refused_before_anything_is_stored(settings: Settings, request_: dict[str, Any],
                                                         field: str) -> None:
    request = {"document": base64.b64encode(book()).decode(), **request_}
    with pytest.raises(InvalidRequest) as refused:
        narrator.submit(request, settings)
    assert refused.value.field == field
    assert open_store(settings).list("jobs/") == []


def narrator_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATOR_")}
    env.update(NARRATOR_STORAGE_URL=settings.storage_url, NARRATOR_WORKFLOWS_DIR=str(settings.workflows_dir),
               NARRATOR_VERIFY="off")
    return subprocess.run([sys.executable, "-m", "narrator.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_cli_lists_chapters_then_speaks_the_book(settings: Settings, tmp_path: Path) -> None:
    epub = tmp_path / "three.epub"
    epub.write_bytes(book())
    listed = narrator_cli(settings, "chunk", str(epub))
    assert listed.returncode == 0, listed.stderr
    assert "Three Openings, by Poe & Austen" in listed.stdout and "3 chapters" in listed.stdout
    for title in TITLES:
        assert title in listed.stdout
    out = tmp_path / "three.m4b"
    spoken = narrator_cli(settings, "speak", str(epub), "-o", str(out), "--chapters", "1-2")
    assert spoken.returncode == 0, spoken.stderr
    assert "chapter 1/2" in spoken.stderr and "2 chapters" in spoken.stderr.splitlines()[-1]
    assert [c.title for c in mutagen.mp4.MP4(out).chapters or []] == TITLES[:2]


def test_chapters_already_spoken_come_from_the_cache(settings: Settings) -> None:
    _, first = submit(settings, chapters="1-2")
    _, whole = submit(settings)
    # Chapters 1 and 2 were synthesized once: the whole book reuses them and makes only chapter 3.
    assert whole.metrics.cache_hits == first.chunks
    assert whole.metrics.chunks_synthesized == whole.chunks - first.chunks


def test_a_book_by_url_and_through_the_runpod_handler(settings: Settings, tmp_path: Path) -> None:
    from narrator import runpod_handler

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "three.epub").write_bytes(book(cover=False))
    with serve(tmp_path / "site") as base:
        runpod_handler.configure(settings.with_(fetch_allow=("127.0.0.1",)), post_updates=False)
        out = runpod_handler.handler({"id": "rp-book", "input": {"document": f"{base}/three.epub",
                                                                  "output": {"format": "m4b"}}})
    assert out.get("success") is True, out
    assert [c["title"] for c in out["chapters"]] == TITLES and out["title"] == "Three Openings"
    path = tmp_path / "rp.m4b"
    path.write_bytes(base64.b64decode(out["audio_b64"]))
    assert [c.title for c in mutagen.mp4.MP4(path).chapters or []] == TITLES


def test_a_book_through_the_broker_and_a_worker(broker_settings: Settings, worker_pool: WorkerPool) -> None:
    worker_pool.start(broker_settings)
    handle = narrator.submit({"document": base64.b64encode(book(cover=False)).decode(), "chapters": "3"},
                             broker_settings)
    result = handle.wait(timeout=300)  # the worker read the book again from the stored request
    assert [(c.number, c.title) for c in result.chapters] == [(3, TITLES[2])]
    assert handle.job_store.manifest().request.document == "<inline document>"


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return
