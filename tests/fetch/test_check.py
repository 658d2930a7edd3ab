"""URL checks: SSRF spellings refused before any connection, allow-list, request pinning.

Every URL here is refused by the check itself. Loopback spellings point at a
canary that listens on all loopback addresses and counts connections; the other
targets are private or unroutable and are never contacted.
"""

from __future__ import annotations

import ipaddress
import socket
import time

import httpx
import pytest

from narrator.errors import FetchError, FetchUnavailable
from narrator.job.fetch import Target, build_request, check_url, fetch, legacy_ipv4

from .conftest import Canary

FIELD = "reference_audio_url"

# (url, what the message says). "{p}" is the canary's port.
REFUSED = [
    # loopback, every spelling
    ("http://127.0.0.1:{p}/a.wav", "loopback"),
    ("http://127.1:{p}/", "loopback"),
    ("http://127.0.1:{p}/", "loopback"),
    ("http://2130706433:{p}/", "loopback"),
    ("http://0x7f000001:{p}/", "loopback"),
    ("http://0x7f.1:{p}/", "loopback"),
    ("http://0177.0.0.1:{p}/", "loopback"),
    ("http://017700000001:{p}/", "loopback"),
    ("http://127.000.000.001:{p}/", "loopback"),
    ("http://0x7f.0x0.0x0.0x1:{p}/", "loopback"),
    ("http://127.0.0.1.:{p}/", "loopback"),
    ("http://127.255.255.254:{p}/", "loopback"),
    ("https://127.0.0.1:{p}/", "loopback"),
    ("HTTP://127.0.0.1:{p}/", "loopback"),
    ("http://localhost:{p}/", "loopback"),
    ("http://LOCALHOST:{p}/", "loopback"),
    ("http://localhost.:{p}/", "loopback"),
    ("http://a.b.localhost:{p}/", "loopback"),
    ("http://[::1]:{p}/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]:{p}/", "loopback"),
    ("http://[::ffff:127.0.0.1]:{p}/", "loopback"),
    ("http://[::ffff:7f00:1]:{p}/", "loopback"),
    ("http://[::127.0.0.1]:{p}/", "loopback"),
    ("http://[::ffff:0:7f00:1]:{p}/", "loopback"),
    ("http://[2002:7f00:1::]:{p}/", "loopback"),
    ("http://[64:ff9b::127.0.0.1]:{p}/", "loopback"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{p}/", "loopback"),
    ("http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11:{p}/", "loopback"),  # fullwidth
    ("http://127\u30020\u30020\u30021:{p}/", "loopback"),  # ideographic full stops
    ("http://\u2460\u2461\u2466.0.0.1:{p}/", "loopback"),  # circled digits
    # "this host"
    ("http://0:{p}/", "unspecified"),
    ("http://0.0.0.0:{p}/", "unspecified"),
    ("http://[::]:{p}/", "unspecified"),
    # private, shared, link-local, site-local
    ("http://10.0.0.1/", "private"),
    ("http://10.255.255.255/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.254/", "private"),
    ("http://192.168.0.1/", "private"),
    ("http://012.0.0.1/", "private"),
    ("http://100.64.0.1/", "shared"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://[fec0::1]/", "site-local"),
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://[::ffff:192.168.1.1]/", "private"),
    ("http://[2002:c0a8:101::]/", "private"),
    # cloud metadata
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://169.254.170.2/v2/credentials", "metadata"),
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("http://[2002:a9fe:a9fe::]/", "metadata"),
    ("http://0xa9fea9fe/", "metadata"),
    ("http://2852039166/", "metadata"),
    ("http://0251.0376.0251.0376/", "metadata"),
    ("http://169.254.43518/", "metadata"),
    ("http://100.100.100.200/latest/meta-data/", "metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
    ("http://metadata.google.internal./computeMetadata/v1/", "metadata"),
    ("http://METADATA/", "metadata"),
    ("http://instance-data/latest/", "metadata"),
    # multicast, broadcast, reserved, special purpose
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://192.0.2.10/", "address"),
    ("http://198.18.0.1/", "address"),
    ("http://[2001:db8::1]/", "address"),
    # schemes
    ("ftp://example.com/a.wav", "only http"),
    ("file:///etc/passwd", "only http"),
    ("gopher://127.0.0.1:{p}/", "only http"),
    ("dict://127.0.0.1:{p}/", "only http"),
    ("data:audio/wav;base64,UklGRg==", "only http"),
    ("javascript:alert(1)", "only http"),
    ("//127.0.0.1:{p}/", "only http"),
    # userinfo and parser confusion
    ("http://user:pass@example.com/", "user information"),
    ("http://example.com@127.0.0.1:{p}/", "user information"),
    ("http://127.0.0.1:{p}@example.com/", "user information"),
    ("http://127.0.0.1:{p}\\@example.com/", "backslash"),
    ("http://127.0.0.1 :{p}/", "spaces"),
    ("http://127.0.0.1:{p}/\n", "control"),
    ("\thttp://127.0.0.1:{p}/", "control"),
    ("http://%31%32%37.0.0.1:{p}/", "invalid numeric host"),
    ("http://%6c%6fcalhost:{p}/", "invalid host name"),
    ("http://exa_mple.com%00.evil/", "invalid host name"),
    ("http:///etc/passwd", "no host"),
    ("http://[::1/", "malformed"),
    ("http://127.0.0.1:99999/", "malformed"),
    ("http://127.0.0.1:0/", "port 0"),
    ("http://1.2.3.09/", "invalid numeric"),
    ("http://0x100000000/", "invalid numeric"),
    ("http://1.2.3.4.5/", "invalid numeric"),
    ("", "not a URL"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_refused_by_check(url: str, reason: str, canary: Canary) -> None:
    url = url.replace("{p}", str(canary.port))
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        check_url(url, field=FIELD, allow=())
    assert time.monotonic() - started < 0.5
    message = str(info.value)
    assert message.startswith(f"{FIELD}: ")
    assert reason in message
    with pytest.raises(FetchError):
        fetch(url, field=FIELD, allow=(), max_bytes=1000, connect_timeout=1.0, total_timeout=2.0)
    assert canary.connections == 0


def test_table_is_large_enough() -> None:
    assert len(REFUSED) >= 60


def test_canary_counts(canary: Canary) -> None:
    # The zero counts above mean something only if a real connection shows up here.
    with socket.create_connection(("127.0.0.1", canary.port), timeout=2):
        pass
    deadline = time.monotonic() + 5
    while canary.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert canary.connections == 1
    # And an allowed fetch of the same URL does connect (the canary hangs up on it).
    with pytest.raises(FetchUnavailable):
        fetch(
            f"http://0x7f.1:{canary.port}/",
            field=FIELD,
            allow=("127.0.0.1",),
            max_bytes=1000,
            connect_timeout=1.0,
            total_timeout=2.0,
        )
    while canary.connections == 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert canary.connections == 2


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7F000001", None),  # hosts are lowercased before this point
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("00", "0.0.0.0"),
        ("1.2.3.09", None),
        ("08", None),
        ("256.0.0.1", None),
        ("1.2.3.256", None),
        ("1.2.65536", None),
        ("4294967296", None),
        ("4294967295", "255.255.255.255"),
        ("1.2.3.4.5", None),
        ("", None),
        ("example", None),
    ],
)
def test_legacy_ipv4(host: str, expected: str | None) -> None:
    result = legacy_ipv4(host)
    assert (str(result) if result is not None else None) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/voice.wav",
        "https://[2606:4700:4700::1111]/voice.wav",
        "http://134744072/voice.wav",  # 8.8.8.8, spelled as a number: public, so fine
        "http://[::ffff:8.8.8.8]/voice.wav",
        "http://[2002:808:808::]/voice.wav",  # 6to4 of a public address
    ],
)
def test_public_addresses_pass(url: str) -> None:
    check_url(url, field=FIELD, allow=())


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://10.1.2.3:9000/v.wav", ("10.0.0.0/8",)),
        ("http://10.1.2.3/v.wav", ("10.1.2.3",)),
        ("http://[fd12::5]/v.wav", ("fd12::/16",)),
        ("http://[fd12::5]/v.wav", ("[fd12::5]",)),
        ("http://[::ffff:10.1.2.3]/v.wav", ("10.1.2.3/32",)),
        ("http://127.0.0.1:8000/v.wav", ("127.0.0.1",)),
        ("http://localhost:8000/v.wav", ("localhost",)),
        ("http://LocalHost.:8000/v.wav", ("localhost.",)),
    ],
)
def test_allow_list_lets_private_through(url: str, allow: tuple[str, ...]) -> None:
    check_url(url, field=FIELD, allow=allow)
    with pytest.raises(FetchError):
        check_url(url, field=FIELD, allow=())


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://169.254.169.254/", ("169.254.0.0/16",)),
        ("http://169.254.169.254/", ("0.0.0.0/0",)),
        ("http://[fd00:ec2::254]/", ("::/0",)),
        ("http://0.0.0.0:8000/", ("0.0.0.0/0",)),
        ("http://224.0.0.1/", ("0.0.0.0/0",)),
        ("http://metadata.google.internal/", ("metadata.google.internal",)),
        ("http://127.0.0.2/", ("127.0.0.1",)),
        ("http://localhost:8000/", ("127.0.0.1",)),
        ("http://10.0.0.2/", ("10.0.0.1", "example.com")),
    ],
)
def test_allow_list_has_limits(url: str, allow: tuple[str, ...]) -> None:
    with pytest.raises(FetchError):
        check_url(url, field=FIELD, allow=allow)


PUBLIC4 = ipaddress.ip_address("93.184.216.34")
PUBLIC6 = ipaddress.ip_address("2606:4700::1111")


@pytest.mark.parametrize(
    ("target", "ip", "url", "host_header", "sni"),
    [
        (Target("https://example.com/v.wav?x=1", "https", "example.com", 443, False, "/v.wav?x=1", (PUBLIC4,), False),
         PUBLIC4, "https://93.184.216.34/v.wav?x=1", "example.com", "example.com"),
        (Target("http://example.com:8080/v", "http", "example.com", 8080, True, "/v", (PUBLIC4,), False),
         PUBLIC4, "http://93.184.216.34:8080/v", "example.com:8080", "example.com"),
        (Target("https://example.com/v", "https", "example.com", 443, False, "/v", (PUBLIC6,), False),
         PUBLIC6, "https://[2606:4700::1111]/v", "example.com", "example.com"),
        (Target("https://93.184.216.34/v", "https", "93.184.216.34", 443, False, "/v", (PUBLIC4,), True),
         PUBLIC4, "https://93.184.216.34/v", "93.184.216.34", None),
        (Target("http://[2606:4700::1111]:81/v", "http", "2606:4700::1111", 81, True, "/v", (PUBLIC6,), True),
         PUBLIC6, "http://[2606:4700::1111]:81/v", "[2606:4700::1111]:81", None),
    ],
)  # fmt: skip
def test_request_is_pinned_to_the_checked_address(
    target: Target, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, url: str, host_header: str, sni: str | None
) -> None:
    """The connection goes to the checked IP; the server still sees the name (Host, SNI, certificate)."""
    with httpx.Client(trust_env=False) as client:
        request = build_request(client, target, ip, httpx.Timeout(5.0))
    assert str(request.url) == url
    assert request.headers["Host"] == host_header
    assert request.extensions.get("sni_hostname") == sni
    assert request.headers["Accept-Encoding"] == "identity"
