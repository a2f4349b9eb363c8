"""The network policy of outbound plugin connections (`SMARTER_CORE_PLUGIN_NETWORKS`).

`public` (the default) lets SQL and API connections reach only global addresses: loopback, private,
link-local, multicast, reserved, unspecified and other non-global addresses are refused. The check runs on
the *resolved* addresses, every time a connection is opened (and on every redirect hop), and the caller
then connects to the address that was checked, so a DNS answer that changes between the check and the
connection (rebinding) cannot reach an internal host. `any` allows every address (single-tenant installs,
tests). `public,<network>,...` is `public` plus the networks listed (CIDR), e.g. one internal database.

A refused address raises `NetworkRefused` before any connection attempt.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from app.errors import AppError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PUBLIC = "public"
ANY = "any"


class UpstreamFailed(AppError):
    """The connection's database or API failed (or could not be reached): 502, a sentence without secrets."""

    status, slug = 502, "bad-gateway"


class UpstreamTimeout(AppError):
    """The connection's database or API did not answer within the connection's timeout: 504."""

    status, slug = 504, "gateway-timeout"


class NetworkRefused(UpstreamFailed):
    """The network policy refuses the address a connection would reach (no connection was attempted)."""

    slug = "network-refused"


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Which addresses outbound connections may reach: every one (`allow_all`), or global ones plus `extra`."""

    allow_all: bool = False
    extra: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, value: str) -> NetworkPolicy:
        """`public`, `any`, or `public,<cidr>,...`; ValueError naming what is wrong."""
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if parts == [ANY]:
            return cls(allow_all=True)
        if not parts or parts[0] != PUBLIC:
            raise ValueError("must be 'public', 'any', or 'public' followed by comma-separated networks (CIDR).")
        extra: list[IPNetwork] = []
        for part in parts[1:]:
            try:
                extra.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not a network such as 10.1.2.0/24.") from None
        return cls(extra=tuple(extra))

    def refusal(self, address: IPAddress) -> str | None:
        """Why the policy refuses `address` (a few words), or None when it may be reached."""
        if self.allow_all:
            return None
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        checked: IPAddress = mapped or address
        if any(checked in network for network in self.extra):
            return None
        for flag, reason in (
            ("is_unspecified", "unspecified"),
            ("is_loopback", "loopback"),
            ("is_link_local", "link-local"),
            ("is_multicast", "multicast"),
            ("is_reserved", "reserved"),
            ("is_private", "private"),
        ):
            if getattr(checked, flag):
                return reason
        if not checked.is_global:  # shared address space (100.64/10), documentation ranges...
            return "not public"
        return None


def literal_address(host: str) -> IPAddress | None:
    """`host` as an IP address when it is one (IPv6 with or without brackets), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal address is itself); UpstreamFailed when it does not resolve."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UpstreamFailed(f"The host {host!r} could not be resolved.") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UpstreamFailed(f"The host {host!r} could not be resolved.")
    return addresses


async def checked_address(policy: NetworkPolicy, host: str, port: int) -> str:
    """The address to connect to for `host`: resolved now, and allowed by `policy` (else NetworkRefused).

    Every address the name resolves to must be allowed: a name that answers with one public and one
    internal address could otherwise reach the internal one on a later resolution.
    """
    if not host:
        raise UpstreamFailed("The connection has no host to connect to.")
    addresses = await resolve(host, port)
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            shown = host if literal_address(host) is not None else f"{host} ({address})"
            raise NetworkRefused(
                f"The address {shown} is {reason}: the network policy (SMARTER_CORE_PLUGIN_NETWORKS=public) "
                "refuses to connect to it."
            )
    return str(addresses[0])
