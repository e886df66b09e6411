"""Where a hosted tool may connect: public addresses, plus the private hosts the operator names.

A tool URL comes from the caller, so without this check an MCP `server_url` would let any key
holder make Rapport send requests into the operator's own network (cloud metadata, databases,
admin consoles). Every address the host name resolves to must be public, unless the host (or
host:port) is listed in `RAPPORT_ALLOWED_TOOL_HOSTS`. The check resolves the name itself; the
connection that follows resolves it again, so a name that changes answers in between (DNS
rebinding) is the residual risk, as for any resolver-based allow list.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.errors import InvalidRequest


class HostNotAllowed(Exception):
    """The URL's host is private, loopback, link-local or otherwise not public."""


async def check_url(url: str, allowed: tuple[str, ...], *, param: str) -> None:
    """Refuse a malformed URL (400 naming `param`) or one whose host is not public and not
    allowed (400 too: it is the request's URL that cannot be used)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(
            f"Invalid '{param}': '{url}'. Expected an http or https URL.",
            param=param,
            code="invalid_value",
        )
    host = parts.hostname.lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if host in allowed or f"{host}:{port}" in allowed:
        return
    try:
        addresses = await _resolve(host, port)
    except OSError:
        raise InvalidRequest(
            f"Invalid '{param}': the host '{host}' could not be resolved.",
            param=param,
            code="invalid_value",
        ) from None
    if not addresses or any(not _is_public(address) for address in addresses):
        raise InvalidRequest(
            f"Invalid '{param}': the host '{host}' is not a public address. An operator can "
            "allow it with RAPPORT_ALLOWED_TOOL_HOSTS.",
            param=param,
            code="invalid_value",
        )


async def _resolve(host: str, port: int) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
