"""The job store: markers -> state, the layout, and the records every reader shares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from narrator.errors import JobNotFound
from narrator.job.store import (
    INLINE_AUDIO,
    ChunkEntry,
    Done,
    JobStore,
    Manifest,
    Markers,
    normalise_job_id,
    parse_done,
    stored_request,
)
from narrator.request import JobRequest
from narrator.result import JobResult, JobState, Metrics, Progress
from narrator.storage import FileStore

JOB = "a" * 32


@pytest.fixture
def job(tmp_path: Path) -> JobStore:
    return JobStore(FileStore(tmp_path), JOB)


@pytest.mark.parametrize(
    ("names", "state"),
    [
        ([], JobState.PENDING),
        (["request.json"], JobState.PENDING),
        (["manifest.json"], JobState.PENDING),  # the staged marker follows the manifest
        (["manifest.json", "staged/3"], JobState.SYNTHESIZING),
        (["staged/3", "done/00000-1500-s", "done/00001-900-c", "done/00002-700-s"], JobState.SYNTHESIZING),
        (["staged/3", "work/joined.wav", "work/captions.vtt"], JobState.UPLOADING),
        (["staged/3", "work/joined.wav", "output.wav", "result.json"], JobState.SUCCESS),
        (["staged/3", "error.json"], JobState.FAILURE),
        (["error.json"], JobState.FAILURE),  # refused at staging: nothing else was written
        (["staged/3", "work/joined.wav", "error.json"], JobState.FAILURE),
        (["staged/3", "cancelled"], JobState.CANCELLED),
        (["staged/3", "cancelled", "error.json"], JobState.CANCELLED),  # the failure the cancel caused
        (["cancelled"], JobState.CANCELLED),
        (["staged/3", "result.json", "cancelled"], JobState.SUCCESS),  # cancelled too late
        (["staged/3", "result.json", "error.json"], JobState.SUCCESS),  # a late duplicate's failure
        (["staged/.tmp-x1y2"], JobState.PENDING),  # a file store's half-written marker
    ],
)
def test_markers_decide_the_state(names: list[str], state: JobState) -> None:
    assert Markers.from_names(names).state is state


def test_job_states_are_their_names_in_json() -> None:
    assert [s.value for s in JobState] == ["PENDING", "SYNTHESIZING", "UPLOADING", "SUCCESS", "FAILURE", "CANCELLED"]
    assert json.dumps({"state": JobState.UPLOADING}) == '{"state": "UPLOADING"}'
    assert Progress(job_id=JOB, state="FAILURE").model_dump(mode="json")["state"] == "FAILURE"
    assert {s for s in JobState if s.final} == {JobState.SUCCESS, JobState.FAILURE, JobState.CANCELLED}


def test_done_markers_first_one_stands() -> None:
    names = ["done/00000-1500-s", "done/00002-250-c", "done/00002-250-s", "done/.tmp-x", "done/00003-1-x", "junk"]
    assert parse_done(names) == {0: Done(seconds=1.5, cached=False), 2: Done(seconds=0.25, cached=True)}


def test_progress_from_one_listing(job: JobStore) -> None:
    assert job.progress() == Progress(job_id=JOB)
    job.objects.put_bytes(job.staged_key(4), b"")
    job.put_chunk(1, b"flac", seconds=2.5, cached=False)
    job.put_chunk(0, b"flac", seconds=1.25, cached=True)
    assert job.progress() == Progress(
        job_id=JOB, state=JobState.SYNTHESIZING, chunks_done=2, chunks_total=4, audio_seconds=3.75
    )
    assert job.done() == {0: Done(seconds=1.25, cached=True), 1: Done(seconds=2.5, cached=False)}


def test_progress_seconds_carry_no_float_noise(job: JobStore) -> None:
    job.objects.put_bytes(job.staged_key(3), b"")
    for index, seconds in enumerate((0.1, 0.2, 6.6)):
        job.put_chunk(index, b"flac", seconds=seconds, cached=False)
    assert job.progress().audio_seconds == 6.9  # a bare sum is 6.8999999999999995
    assert '"audio_seconds":6.9,' in job.progress().model_dump_json()


def test_the_first_failure_is_the_one_recorded(job: JobStore) -> None:
    assert job.error() is None
    assert job.record_error("chunk 2: ComfyUI refused the prompt", "narrator.synthesize_chunk") is True
    assert job.record_error("chord failed", "narrator.concatenate") is False
    error = job.error()
    assert error is not None and error.error.startswith("chunk 2:") and error.task == "narrator.synthesize_chunk"
    progress = job.progress()
    assert progress.state is JobState.FAILURE and progress.error == "chunk 2: ComfyUI refused the prompt"


def test_cancel_outranks_the_failure_it_causes(job: JobStore) -> None:
    job.cancel()
    job.record_error(f"job {JOB} was cancelled")
    assert job.cancelled() and job.progress().state is JobState.CANCELLED


def _manifest(request: JobRequest) -> Manifest:
    entry = ChunkEntry(index=0, text="Hi.", start=0, end=3, boundary="end", digest="d" * 64)
    return Manifest(
        job_id=JOB, request=request, model="local", params={}, text_length=3, format="wav",
        sample_rate=22050, chunks=[entry],
    )


def test_manifest_round_trip_is_typed_and_marks_staged(job: JobStore) -> None:
    with pytest.raises(JobNotFound):
        job.manifest()
    request = JobRequest.parse({"text": "Hi.", "output": {"audio_b64": False, "url_expires": 60}})
    job.save_manifest(_manifest(request))
    read = job.manifest()
    assert read.request.output.audio_b64 is False and read.request.output.url_expires == 60
    assert job.progress().chunks_total == 1 and job.state() is JobState.SYNTHESIZING


def test_stored_request_keeps_no_inline_audio() -> None:
    audio = "UklGR" + "A" * 200
    request = JobRequest.parse({
        "text": "Alice: hi. Bob: yo.",
        "voice": audio,
        "voices": {"2": audio, "3": "https://example.com/v.wav", "4": "narrator-en"},
    })
    stored = stored_request(request)
    assert stored.voice == INLINE_AUDIO
    assert stored.voices == {"2": INLINE_AUDIO, "3": "https://example.com/v.wav", "4": "narrator-en"}
    assert stored.text == request.text
    assert stored_request(JobRequest.parse({"text": "x"})) == JobRequest.parse({"text": "x"})


def test_result_record_never_holds_inline_audio(job: JobStore) -> None:
    assert job.result() is None
    result = JobResult(
        audio_b64="UklGRg==", duration_seconds=1.0, text_length=3, metrics=Metrics(), job_id=JOB,
        output_key=job.output_key("wav"), format="wav", sample_rate=22050, chunks=1,
    )
    record = job.save_result(result)
    assert record.audio_b64 is None and job.result() == record
    assert job.state() is JobState.SUCCESS


def test_layout(job: JobStore) -> None:
    prefix = f"jobs/{JOB}/"
    assert job.manifest_key == prefix + "manifest.json"
    assert job.chunk_key(7) == prefix + "chunks/00007.flac"
    assert job.done_key(7, 1.2345, True) == prefix + "done/00007-1234-c"
    assert job.output_key("mp3") == prefix + "output.mp3" and job.captions_key("vtt") == prefix + "output.vtt"
    assert (job.result_key, job.error_key, job.cancel_key) == (
        prefix + "result.json", prefix + "error.json", prefix + "cancelled"
    )


@pytest.mark.parametrize("bad", ["", "../../etc", "A" * 32, "a" * 31, "a" * 32 + "/x"])
def test_only_job_ids_name_a_job(tmp_path: Path, bad: str) -> None:
    with pytest.raises(JobNotFound):
        JobStore(FileStore(tmp_path), bad)


def test_task_ids_with_dashes_are_job_ids() -> None:
    assert normalise_job_id("AAAAAAAA-aaaa-aaaa-aaaa-aaaaaaaaaaaa") == JOB
