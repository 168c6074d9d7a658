"""Which network addresses the platform may send a request to on someone's behalf.

Webhook receivers (a client's URL) and connector requests (an institution's URL,
often typed by an operator or a user) must not reach the platform's own network:
private, loopback, link-local (cloud metadata) and reserved addresses (SSRF).
"""

from __future__ import annotations

import ipaddress
import socket


def address_allowed(address: str) -> bool:
    """Whether an IP address is public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> str | None:
    """The IP address a host written as a literal stands for, read the way the
    resolver reads it: besides dotted quads and IPv6, the legacy IPv4 forms
    ``127.1``, ``2130706433``, ``0x7f000001`` and ``0``. None for a name."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None
