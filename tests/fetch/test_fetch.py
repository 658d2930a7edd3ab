"""fetch() against a real HTTP server on loopback (allowed through ``allow``)."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from narrator.errors import FetchError, FetchUnavailable
from narrator.job.fetch import MAX_REDIRECTS, fetch

from .conftest import SMALL, Origin
from .test_check import FIELD

ALLOW = ("127.0.0.1",)
MB = 1024 * 1024


def get(url: str, *, max_bytes: int = MB, total: float = 5.0, allow: tuple[str, ...] = ALLOW) -> bytes:
    return fetch(url, field=FIELD, allow=allow, max_bytes=max_bytes, connect_timeout=1.0, total_timeout=total)


def test_small_file(origin: Origin) -> None:
    assert get(origin.url("/small")) == SMALL


def test_exactly_at_the_cap(origin: Origin) -> None:
    assert get(origin.url("/small"), max_bytes=len(SMALL)) == SMALL
    with pytest.raises(FetchError, match="over the limit"):
        get(origin.url("/small"), max_bytes=len(SMALL) - 1)


def test_host_header_survives_pinning(origin: Origin) -> None:
    # The connection goes to 127.0.0.1; the server still sees the name the URL used.
    assert get(origin.url("/echo-host", "localhost"), allow=("localhost",)) == f"localhost:{origin.port}".encode()
    assert get(origin.url("/echo-host", "0x7f.1")) == f"127.0.0.1:{origin.port}".encode()


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_cap_enforced_while_streaming(origin: Origin, framing: str) -> None:
    total = 64 * MB
    path = "/big"
    started = time.monotonic()
    with pytest.raises(FetchError, match="limit exceeded"):
        get(origin.url(f"{path}?size={total}&framing={framing}"), max_bytes=MB)
    assert time.monotonic() - started < 5
    assert origin.state.finished(path).wait(timeout=10), "server never noticed the client leaving"
    # Kernel buffers on loopback hold a few MB at most; the rest was never sent.
    assert origin.state.sent[path] < total // 4


def test_content_length_over_cap_refused_before_reading(origin: Origin) -> None:
    total = 64 * MB
    started = time.monotonic()
    with pytest.raises(FetchError, match=f"{total} bytes is over the limit of {MB}"):
        get(origin.url(f"/big?size={total}&framing=length"), max_bytes=MB)
    assert time.monotonic() - started < 5
    assert origin.state.finished("/big").wait(timeout=10)
    assert origin.state.sent["/big"] < total // 4


def test_compressed_response_refused(origin: Origin) -> None:
    with pytest.raises(FetchError, match="compressed"):
        get(origin.url("/gzip"))


def test_redirects_followed(origin: Origin) -> None:
    assert get(origin.url("/chain/3")) == SMALL
    assert get(origin.url(f"/chain/{MAX_REDIRECTS}")) == SMALL
    relative = origin.url("/redirect?status=303&to=" + quote("/small"))
    assert get(relative) == SMALL


def test_redirect_loop_bounded(origin: Origin) -> None:
    with pytest.raises(FetchError, match="redirects"):
        get(origin.url("/loop"))
    assert origin.state.hits["/loop"] == MAX_REDIRECTS + 1
    with pytest.raises(FetchError, match="redirects"):
        get(origin.url(f"/chain/{MAX_REDIRECTS + 1}"))


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        ("http://127.0.0.2:{p}/small", "loopback"),
        ("http://[::1]:{p}/small", "loopback"),
        ("http://localhost:{p}/small", "loopback"),
        ("http://2130706434:{p}/small", "loopback"),
        ("http://169.254.169.254/latest/meta-data/iam/", "metadata"),
        ("http://[::ffff:a9fe:a9fe]/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://10.0.0.1/", "private"),
        ("file:///etc/passwd", "only http"),
        ("gopher://127.0.0.1:{p}/", "only http"),
        ("http://user:pw@127.0.0.1:{p}/small", "user information"),
    ],
)
def test_redirect_to_disallowed_target(origin: Origin, to: str, reason: str) -> None:
    url = origin.url("/redirect?to=" + quote(to.replace("{p}", str(origin.port)), safe=""))
    with pytest.raises(FetchError, match=reason):
        get(url)
    assert origin.state.hits["/small"] == 0


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, FetchError), (403, FetchError), (410, FetchError), (503, FetchUnavailable), (500, FetchUnavailable),
     (429, FetchUnavailable), (408, FetchUnavailable), (304, FetchError)],
)  # fmt: skip
def test_status_codes(origin: Origin, status: int, error: type[Exception]) -> None:
    with pytest.raises(error, match=f"^{FIELD}: server answered {status}$"):
        get(origin.url(f"/status/{status}"))


def test_redirect_without_location(origin: Origin) -> None:
    with pytest.raises(FetchError, match="without a location"):
        get(origin.url("/status/302"))


def test_nobody_listening(origin: Origin) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchUnavailable, match="cannot connect"):
        get(f"http://127.0.0.1:{port}/small")


def test_connect_timeout() -> None:
    # A listener whose backlog is full drops further SYNs: the connect hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        try:
            started = time.monotonic()
            with pytest.raises(FetchUnavailable):
                fetch(
                    f"http://127.0.0.1:{port}/",
                    field=FIELD,
                    allow=ALLOW,
                    max_bytes=MB,
                    connect_timeout=0.3,
                    total_timeout=10.0,
                )
            assert time.monotonic() - started < 2.5
        finally:
            for filler in fillers:
                filler.close()


def test_server_that_never_answers(origin: Origin) -> None:
    started = time.monotonic()
    with pytest.raises(FetchUnavailable, match="timed out"):
        get(origin.url("/hang"), total=1.0)
    assert 0.9 < time.monotonic() - started < 2.5


def test_trickling_server_hits_total_timeout(origin: Origin) -> None:
    started = time.monotonic()
    with pytest.raises(FetchUnavailable, match="timed out"):
        get(origin.url("/slow?every=0.1"), total=1.0)
    assert 0.9 < time.monotonic() - started < 2.5


def test_stall_after_trickle_still_ends_at_the_deadline(origin: Origin) -> None:
    # Trickle for 1.2 s, then stall: a per-read timeout alone would wait until ~3.2 s.
    started = time.monotonic()
    with pytest.raises(FetchUnavailable, match="timed out"):
        get(origin.url("/slow?every=0.1&for=1.2"), total=2.0)
    assert 1.9 < time.monotonic() - started < 2.8


# -- TLS: SNI and certificate name follow the URL, not the pinned address --------------


class TLSServer:
    def __init__(self, directory: Path) -> None:
        cert, key = _self_signed(directory, "localhost")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.sni: list[str | None] = []
        context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)  # type: ignore[func-returns-value]
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                with self.context.wrap_socket(conn, server_side=True):
                    pass
            except OSError:
                pass  # the client refuses our self-signed certificate
            finally:
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TLSServer]:
    server = TLSServer(tmp_path)
    yield server
    server.close()


def test_https_sends_the_name_as_sni_and_verifies_the_certificate(tls_server: TLSServer) -> None:
    with pytest.raises(FetchError, match="TLS certificate of localhost is not valid"):
        get(f"https://localhost:{tls_server.port}/v.wav", allow=("localhost",))
    assert tls_server.sni == ["localhost"]


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
