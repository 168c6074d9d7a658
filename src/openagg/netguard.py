"""Which network addresses the platform may send a request to on someone's behalf.

Webhook receivers (a client's URL) and connector requests (an institution's URL,
often typed by an operator or a user) must not reach the platform's own network:
private, loopback, link-local (cloud metadata) and reserved addresses (SSRF).
"""

from __future__ import annotations

import ipaddress


def address_allowed(address: str) -> bool:
    """Whether an IP address is public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
