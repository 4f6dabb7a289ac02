"""Where Pledge may send a request: webhook endpoints, recipients' endpoints, portability
transfers. Their URLs are typed in by tenant staff, and the sending happens on the server —
inside its network. Without a check, a URL could make Pledge POST to its own loopback, to a
cloud metadata service (169.254.169.254) or to any private host behind the firewall (SSRF).

* When a URL is saved (`check_url`): `https` only, no user name or password in it (in
  `https://127.0.0.1@10.0.0.5/` the host is 10.0.0.5), and not a literal address or a
  `localhost` name outside the public internet.
* When it is called (`pin`): the host name is resolved (within RESOLVE_TIMEOUT_S) and every
  address must be public — an IPv4 address inside an IPv6 one (NAT64, 6to4, SIIT) too;
  the request then goes to the address that was checked — the Host header and TLS's server
  name (SNI, certificate check) stay the name — so DNS cannot answer differently between
  the check and the connection (rebinding).

`PLEDGE_WEBHOOKS_ALLOW_PRIVATE=true` lifts both (plain `http` and private addresses) for a
development machine or a closed network whose receivers are private on purpose.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from pledge.core.config import get_settings
from pledge.core.errors import InvalidInput


class BlockedTarget(Exception):
    """The URL's host is, or resolves to, an address Pledge does not send to."""


class Unresolved(Exception):
    """The host name does not resolve (now): tried again later, like a refused connection."""


def _allow_private() -> bool:
    return get_settings().webhooks_allow_private


# IPv6 ranges whose last 32 bits are an IPv4 address that a translator on the way (NAT64,
# SIIT) or the host itself reaches: 64:ff9b::a00:5 *is* 10.0.0.5 on a NAT64 network.
_EMBEDDING_IPV4 = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix (RFC 6052)
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 7915)
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated; :: and ::1 too)
)
# The local-use NAT64 prefix (RFC 8215): where in it the IPv4 address sits is the network's
# choice, so it cannot be checked; never a public receiver.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
# How long a host name may take to resolve: a resolver that never answers must not hold a
# post, and the worker's cycle with it.
RESOLVE_TIMEOUT_S = 5.0


def _public(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64:
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:  # 2002:a00:5:: is 6to4 for 10.0.0.5
            ip = ip.sixtofour
        elif any(ip in net for net in _EMBEDDING_IPV4):
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int) -> list[str]:
    """The host's addresses, given up after RESOLVE_TIMEOUT_S (Unresolved). The lookup runs
    in a thread of its own: `getaddrinfo` cannot be interrupted; one that hangs is left to
    end on its own, its answer unused."""
    outcome: list[list[str] | Exception] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome.append([str(info[4][0]) for info in infos])
        except Exception as exc:  # handed to the caller
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name="pledge-resolve", daemon=True).start()
    if not done.wait(RESOLVE_TIMEOUT_S):
        raise Unresolved(host)
    found = outcome[0]
    if isinstance(found, socket.gaierror):
        raise Unresolved(host) from found
    if isinstance(found, UnicodeError):
        raise BlockedTarget("host name") from found
    if isinstance(found, Exception):
        raise found
    return found


def check_url(url: str, what: str = "the URL") -> str:
    """The URL, when Pledge may send to it; InvalidInput saying why not."""
    allow_private = _allow_private()
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise InvalidInput(f"{what} is not a valid URL") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise InvalidInput(f"{what} must start with https://")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"{what} must not hold a user name or password")
    host = parts.hostname
    if not host:
        raise InvalidInput(f"{what} has no host")
    if port == 0:
        raise InvalidInput(f"{what} has no valid port")
    if not allow_private:
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidInput(f"{what} must be on the public internet, not this machine")
        try:
            literal = _public(host)
        except ValueError:
            literal = True  # a name: checked again, resolved, when it is called
        if not literal:
            raise InvalidInput(f"{what} must be on the public internet, not a private address")
    return url.strip()


@dataclass(frozen=True)
class Pinned:
    """Where to connect (the checked address) and what to call it (Host, SNI)."""

    url: str
    host_header: str
    server_name: str


def pin(url: str) -> Pinned:
    """Resolve the URL's host once, refuse it if any address is not public (BlockedTarget),
    and give the URL with the address in place of the name."""
    allow_private = _allow_private()
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in (("https", "http") if allow_private else ("https",)) or not host:
        raise BlockedTarget("scheme or host")
    if parts.username is not None or parts.password is not None:
        raise BlockedTarget("user info")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not addresses:
        raise Unresolved(host)
    if not allow_private and not all(_public(a) for a in addresses):
        raise BlockedTarget("private address")
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return Pinned(
        urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        host_header,
        host,
    )
