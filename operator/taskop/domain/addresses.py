"""BBS destinations (security-group rules) as CIDRs."""

from __future__ import annotations

import ipaddress


def cidrs(destination: str) -> list[str]:
    """The CIDRs of one BBS destination: ``10.0.0.0/8``, ``10.0.0.1``, ``10.0.0.1-10.0.0.9``
    (a comma-separated list of those, as BBS allows)."""
    out: list[str] = []
    for part in (p.strip() for p in destination.split(",")):
        if "/" in part:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        elif "-" in part:
            first, last = (ipaddress.ip_address(x.strip()) for x in part.split("-", 1))
            try:
                out.extend(str(n) for n in ipaddress.summarize_address_range(first, last))
            except TypeError:
                raise ValueError(f"{part} mixes IPv4 and IPv6") from None
        else:
            out.append(str(ipaddress.ip_network(part)))
    return out
