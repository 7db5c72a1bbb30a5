"""The address a request comes from: the peer's, or what a trusted proxy says it forwarded.

Like uvicorn's `forwarded_allow_ips`: `X-Forwarded-For` is believed only when the peer is one of
the trusted proxies, and then its right-most entry that is not itself a trusted proxy is the
client (entries further left were written by the client and prove nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


def parse_networks(spec: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks (`*` = every address); ValueError if malformed."""
    networks: list[Network] = []
    for part in (p.strip() for p in spec.split(",")):
        if part == "*":
            networks += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
        elif part:
            networks.append(ipaddress.ip_network(part, strict=False))
    return tuple(networks)


def _address(hop: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    hop = hop.strip()
    if hop.startswith("["):  # [v6]:port
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:  # v4:port
        hop = hop.partition(":")[0]
    try:
        address = ipaddress.ip_address(hop)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(hop: str, trusted: Iterable[Network]) -> bool:
    address = _address(hop)
    return address is not None and any(address in network for network in trusted)


def client_address(peer: str | None, forwarded: list[str], trusted: tuple[Network, ...]) -> str:
    """The client of a request from `peer` carrying these `X-Forwarded-For` header values."""
    if not peer:
        return UNKNOWN
    if not forwarded or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for value in forwarded for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            address = _address(hop)
            return str(address) if address is not None else hop[:64]
    return str(_address(hops[0])) if hops else peer  # a chain of trusted proxies only


def of_request(request: Request, trusted: tuple[Network, ...]) -> str:
    """The client address of `request`."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)


def scheme_of(request: Request, trusted: tuple[Network, ...]) -> str:
    """The scheme the client used: `X-Forwarded-Proto` when a trusted proxy sent it, else the
    request's own (a proxy ending TLS talks plain HTTP to us)."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    if peer and forwarded in ("http", "https") and _trusted(peer, trusted):
        return forwarded
    return request.url.scheme
