"""BBS domains (``/v1/domains/upsert``, ``/v1/domains/list``): names with a freshness deadline.

Cloud Controller upserts its domain (``cf-tasks``, TTL 120 s) after every sync and reads the
fresh ones. As in BBS's database (``db/sqldb/domain_db.go``): an upsert sets the domain's expiry to
now + ttl seconds, ttl 0 never expires, and a domain is listed while its expiry is after now.

Kept across operator restarts in one ConfigMap, ``taskop-bbs-domains`` in the BBS namespace
(key ``domains.json``: domain → expiry in Unix nanoseconds), written with its resourceVersion as
precondition so that concurrent upserts (several replicas) never lose one another. RBAC grants
get/update on that one name, and create in that namespace (create cannot be limited by name).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

from taskop.kube.client import AlreadyExists, Conflict, Kube, Obj

CONFIG_MAP = "taskop-bbs-domains"
KEY = "domains.json"
NEVER = sys.maxsize  # Go's math.MaxInt64, what BBS stores for ttl 0
MAX_ATTEMPTS = 8


def upserted(domains: Mapping[str, int], domain: str, ttl: int, now: int) -> dict[str, int]:
    """The domains after an upsert at ``now`` (ns); expired ones are dropped on the way."""
    fresh = {d: expiry for d, expiry in domains.items() if expiry > now}
    fresh[domain] = NEVER if ttl == 0 else now + ttl * 1_000_000_000
    return fresh


def fresh(domains: Mapping[str, int], now: int) -> list[str]:
    """The domains whose expiry is after ``now``, sorted."""
    return sorted(d for d, expiry in domains.items() if expiry > now)


def _decode(config_map: Obj | None) -> dict[str, int]:
    raw = ((config_map or {}).get("data") or {}).get(KEY) or "{}"
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


class DomainStore:
    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    async def list(self, now: int) -> list[str]:
        return fresh(_decode(await self.kube.get_config_map(self.namespace, CONFIG_MAP)), now)

    async def upsert(self, domain: str, ttl: int, now: int) -> None:
        for _ in range(MAX_ATTEMPTS):
            current = await self.kube.get_config_map(self.namespace, CONFIG_MAP)
            data = {KEY: json.dumps(upserted(_decode(current), domain, ttl, now), sort_keys=True)}
            try:
                if current is None:
                    await self.kube.create_config_map(
                        self.namespace, {"metadata": {"name": CONFIG_MAP}, "data": data}
                    )
                else:
                    await self.kube.replace_config_map(
                        self.namespace, CONFIG_MAP, current["metadata"]["resourceVersion"], data
                    )
                return
            except (Conflict, AlreadyExists):
                continue  # another upsert won: apply ours to what it wrote
        raise Conflict(f"ConfigMap {CONFIG_MAP} kept changing; upsert of {domain} not applied")
