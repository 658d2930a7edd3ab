"""Fetch a URL input (reference audio) without letting the request reach inside.

The rules, checked before connecting and again on every redirect:

- only ``http`` and ``https``; no userinfo; no control characters, spaces or backslashes;
- the host is normalised the way resolvers and browsers read it (IDNA, trailing
  dot, and the legacy IPv4 spellings ``2130706433``, ``0177.0.0.1``, ``0x7f.1``);
- every address the host resolves to must be public: loopback, private,
  link-local, multicast, reserved, unspecified, shared (100.64/10), documentation
  and cloud metadata addresses are refused, in IPv4 and IPv6, including IPv4
  embedded in IPv6 (mapped, compatible, translated, 6to4, Teredo, NAT64);
- ``allow`` (``NARRATOR_FETCH_ALLOW``) names hosts or networks that may be reached
  although private; metadata, unspecified, multicast and broadcast addresses stay
  refused whatever it says.

The connection is pinned to an address that was checked: the request goes to
the IP itself, with the original ``Host`` header and, for https, the original
name as SNI and certificate name. A DNS answer that changes between the check and
the connection (rebinding) therefore cannot redirect it.

Residual risks: the check trusts the local resolver's answer for names
(a compromised resolver can still hand out a public address it controls, which is
no worse than any public host); and a public server may of course serve anything,
which the audio module validates.

Limits: a connect timeout per attempt, one total deadline across DNS, redirects
and the body (a watchdog shuts the socket at the deadline, so a server that
trickles bytes cannot stretch it), and a size cap checked against
``Content-Length`` before reading and enforced while streaming. Compressed
responses are refused rather than inflated.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from ..errors import FetchError, FetchUnavailable

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5
MAX_URL_CHARS = 4096
DNS_TIMEOUT = 5.0
REDIRECTS = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUS = frozenset({408, 425, 429})

METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean, …
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS VPC DNS
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",
    )
)
SHARED = ipaddress.ip_network("100.64.0.0/10")
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
BROADCAST = ipaddress.ip_address("255.255.255.255")

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


@dataclass(frozen=True)
class Target:
    """A URL that passed the checks, with the addresses it may be fetched from."""

    url: str
    scheme: str
    host: str  # ASCII, lowercase, no trailing dot; an IP literal without brackets
    port: int
    explicit_port: bool
    target: str  # path and query
    addresses: tuple[IPAddress, ...]
    literal: bool  # the URL named an IP, not a host name


# -- public API -----------------------------------------------------------------


def check_url(url: str, *, field: str, allow: tuple[str, ...]) -> None:
    """Raise :class:`FetchError` (names ``field``) unless ``url`` may be fetched."""
    _checked(url, field, allow, DNS_TIMEOUT)


def fetch(
    url: str,
    *,
    field: str,
    allow: tuple[str, ...],
    max_bytes: int,
    connect_timeout: float,
    total_timeout: float,
) -> bytes:
    """GET ``url`` under the rules above; return the body (at most ``max_bytes``)."""
    deadline = time.monotonic() + total_timeout
    current = url
    with httpx.Client(trust_env=False, follow_redirects=False, verify=True) as client:
        for hop in range(MAX_REDIRECTS + 1):
            target = _checked(current, field, allow, _remaining(deadline, field))
            response = _open(client, target, field, connect_timeout, deadline)
            try:
                location = _redirect_location(response, field)
                if location is None:
                    body = _read_body(response, field, max_bytes, deadline)
                    log.info(
                        "fetched url input",
                        extra={"field": field, "host": target.host, "bytes": len(body), "redirects": hop},
                    )
                    return body
            finally:
                response.close()
            current = urljoin(target.url, location)
    raise FetchError(f"{field}: more than {MAX_REDIRECTS} redirects")


# -- parsing and checking (pure, but for DNS) ---------------------------------------


def _checked(url: str, field: str, allow: tuple[str, ...], dns_timeout: float) -> Target:
    scheme, host, port, explicit, target, literal = _parse(url, field)
    rules = _Allow.parse(allow)
    if host in METADATA_NAMES:
        raise FetchError(f"{field}: {host} is a cloud metadata service")
    trusted_name = host in rules.names
    if (host == "localhost" or host.endswith(".localhost")) and not trusted_name:
        raise FetchError(f"{field}: {host} is a loopback name")
    addresses = (literal,) if literal is not None else _resolve(host, port, field, dns_timeout)
    for ip in addresses:
        reason = _refusal(ip, rules, trusted_name)
        if reason:
            shown = f"{host}" if literal is not None else f"{host} resolves to an address that"
            raise FetchError(f"{field}: {shown} is {reason}; not allowed")
    return Target(url, scheme, host, port, explicit, target, addresses, literal is not None)


def _parse(url: str, field: str) -> tuple[str, str, int, bool, str, IPAddress | None]:
    """(scheme, host, port, explicit port, path+query, IP literal or None)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise FetchError(f"{field}: not a URL (or longer than {MAX_URL_CHARS} characters)")
    # urlsplit silently drops some of these; browsers read others as separators.
    if any(c <= " " or c == "\x7f" or c == "\\" for c in url):
        raise FetchError(f"{field}: URL contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError(f"{field}: malformed URL (host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"{field}: only http and https URLs are accepted")
    if "@" in parts.netloc:
        raise FetchError(f"{field}: URLs with user information are not accepted")
    if not parts.hostname:
        raise FetchError(f"{field}: URL has no host")
    if port == 0:
        raise FetchError(f"{field}: port 0 is not allowed")
    bracketed = parts.netloc.startswith("[")
    host, literal = _normalise_host(parts.hostname, bracketed, field)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if scheme == "https" else 80
    return scheme, host, port or default, port is not None, target, literal


def _normalise_host(raw: str, bracketed: bool, field: str) -> tuple[str, IPAddress | None]:
    if bracketed:
        try:
            ip6 = ipaddress.IPv6Address(raw)
        except ValueError:
            raise FetchError(f"{field}: invalid IPv6 host") from None
        return str(ip6), ip6
    try:
        # IDNA maps fullwidth digits and ideographic dots: "１２７。０。０。１" is 127.0.0.1.
        host = raw.encode("idna").decode("ascii") if not raw.isascii() else raw
    except UnicodeError:
        raise FetchError(f"{field}: invalid host name") from None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if labels and _NUMERIC.match(labels[-1]):
        # WHATWG: a host whose last label is numeric is an IPv4 address or nothing.
        ip4 = legacy_ipv4(host)
        if ip4 is None:
            raise FetchError(f"{field}: invalid numeric host")
        return str(ip4), ip4
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise FetchError(f"{field}: invalid host name")
    return host, None


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Parse IPv4 as ``inet_aton`` and browsers do: 1-4 parts, decimal, octal (0…) or hex (0x…)."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        if re.fullmatch(r"0x[0-9a-f]*", part):
            numbers.append(int(part[2:] or "0", 16))
        elif re.fullmatch(r"0[0-7]+", part):
            numbers.append(int(part, 8))
        elif re.fullmatch(r"[0-9]+", part) and not (len(part) > 1 and part[0] == "0"):
            numbers.append(int(part))
        else:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


@dataclass(frozen=True)
class _Allow:
    names: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> _Allow:
        names: set[str] = set()
        networks = []
        for entry in entries:
            entry = entry.strip().lower()
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if entry:
                    names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def permits(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


def _refusal(ip: IPAddress, rules: _Allow, trusted_name: bool) -> str | None:
    """Why ``ip`` may not be reached, or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # the socket connects to the IPv4 address itself
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%")[0])
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast or ip == BROADCAST:
        return "a multicast or broadcast address"
    if trusted_name or rules.permits(ip):
        return None
    for inner in _embedded_ipv4(ip):
        reason = _refusal(inner, rules, False)
        if reason:
            return f"{reason} (embedded in IPv6)"
    return _category(ip)


def _category(ip: IPAddress) -> str | None:
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in SHARED:
        return "a shared (carrier-grade NAT) address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (compatible, translated, 6to4, Teredo, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    value = int(ip)
    found: list[ipaddress.IPv4Address] = []
    if value >> 32 == 0 and value > 1:
        found.append(ipaddress.IPv4Address(value))  # ::a.b.c.d (deprecated "compatible")
    if ip in TRANSLATED or any(ip in net for net in NAT64):
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def _resolve(host: str, port: int, field: str, timeout: float) -> tuple[IPAddress, ...]:
    """getaddrinfo with a deadline (it has none of its own)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, name="narrator-resolve", daemon=True)
    worker.start()
    worker.join(max(timeout, 0.001))
    if worker.is_alive():
        raise FetchUnavailable(f"{field}: resolving {host} timed out")
    error = box.get("error")
    if isinstance(error, socket.gaierror) and error.errno in _NO_SUCH_HOST:
        raise FetchError(f"{field}: host {host} does not resolve")
    if error is not None:
        raise FetchUnavailable(f"{field}: resolving {host} failed ({type(error).__name__})")
    seen: dict[IPAddress, None] = {}
    for _family, _type, _proto, _canon, sockaddr in box["infos"]:
        seen.setdefault(ipaddress.ip_address(sockaddr[0]), None)
    if not seen:
        raise FetchError(f"{field}: host {host} does not resolve")
    return tuple(seen)


_NO_SUCH_HOST = frozenset(
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if code is not None
)


# -- the HTTP exchange ---------------------------------------------------------------


def _remaining(deadline: float, field: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchUnavailable(f"{field}: timed out")
    return left


def build_request(client: httpx.Client, target: Target, ip: IPAddress, timeout: httpx.Timeout) -> httpx.Request:
    """A GET to ``ip`` that presents itself as ``target.host`` (Host header, SNI, certificate)."""
    address = f"[{ip}]".replace("%", "%25") if ip.version == 6 else str(ip)
    host_header = f"[{target.host}]" if ":" in target.host else target.host
    if target.explicit_port:
        host_header = f"{host_header}:{target.port}"
    headers = {"Host": host_header, "Accept-Encoding": "identity", "User-Agent": "narrator-fetch/1"}
    # sni_hostname also makes httpcore verify the certificate against the name.
    extensions = {} if target.literal else {"sni_hostname": target.host}
    return client.build_request(
        "GET",
        f"{target.scheme}://{address}:{target.port}{target.target}",
        headers=headers,
        timeout=timeout,
        extensions=extensions,
    )


def _open(
    client: httpx.Client, target: Target, field: str, connect_timeout: float, deadline: float
) -> httpx.Response:
    """Send the request to the first checked address that accepts the connection."""
    failure = "no address"
    for ip in target.addresses:
        left = _remaining(deadline, field)
        timeout = httpx.Timeout(left, connect=min(connect_timeout, left))
        try:
            return client.send(build_request(client, target, ip, timeout), stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if _certificate_problem(exc):
                raise FetchError(f"{field}: TLS certificate of {target.host} is not valid") from None
            failure = type(exc).__name__
        except httpx.HTTPError as exc:
            raise _translate(exc, field, target.host, deadline) from None
    raise FetchUnavailable(f"{field}: cannot connect to {target.host} ({failure})")


def _redirect_location(response: httpx.Response, field: str) -> str | None:
    status = response.status_code
    if status in REDIRECTS:
        location: str | None = response.headers.get("location")
        if not location:
            raise FetchError(f"{field}: redirect ({status}) without a location")
        return location
    if 200 <= status < 300:
        return None
    if status >= 500 or status in RETRYABLE_STATUS:
        raise FetchUnavailable(f"{field}: server answered {status}")
    raise FetchError(f"{field}: server answered {status}")


def _read_body(response: httpx.Response, field: str, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise FetchError(f"{field}: invalid Content-Length")
        if int(declared) > max_bytes:
            raise FetchError(f"{field}: {int(declared)} bytes is over the limit of {max_bytes}")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchError(f"{field}: compressed responses ({encoding}) are not accepted")
    watchdog = _Watchdog(response, _remaining(deadline, field))
    body = bytearray()
    try:
        for chunk in response.iter_raw():  # as the network delivers it, not re-chunked
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(f"{field}: more than {max_bytes} bytes; limit exceeded")
            _remaining(deadline, field)
    except httpx.HTTPError as exc:
        raise _translate(exc, field, "", deadline) from None
    finally:
        watchdog.cancel()
    return bytes(body)


class _Watchdog:
    """Shut the socket at the deadline, so one blocked read cannot outlive it."""

    def __init__(self, response: httpx.Response, seconds: float) -> None:
        stream = response.extensions.get("network_stream")
        self._sock: socket.socket | None = stream.get_extra_info("socket") if stream is not None else None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        if self._sock is not None:
            self._timer.start()

    def _fire(self) -> None:
        if self._sock is None:
            return
        try:
            # The plain socket's shutdown (not SSLSocket's) wakes a blocked read in
            # another thread without tearing down the TLS object under it.
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: nothing left to interrupt

    def cancel(self) -> None:
        self._timer.cancel()


def _translate(exc: httpx.HTTPError, field: str, host: str, deadline: float) -> Exception:
    where = f" from {host}" if host else ""
    if isinstance(exc, httpx.TimeoutException) or time.monotonic() >= deadline:
        return FetchUnavailable(f"{field}: timed out reading{where}")
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
        return FetchUnavailable(f"{field}: connection failed{where} ({type(exc).__name__})")
    return FetchError(f"{field}: request failed{where} ({type(exc).__name__})")


def _certificate_problem(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
