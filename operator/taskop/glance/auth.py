"""Who is asking and whether they may: Kubernetes-native, as kube-rbac-proxy does it.

``X-Auth-Token`` carries a Kubernetes bearer token (a ServiceAccount's, an OIDC id token, …). A
TokenReview says whose it is (no token or an unauthenticated one: 401). A SubjectAccessReview
then asks whether that identity may do the request's verb on ``tasks.taskop.dev`` in the door's
namespace, exactly as ``kubectl`` would be judged (refused: 403):

    POST /v2/tasks → create;  GET /v2/tasks → list;  GET /v2/tasks/{id} → get.

Answers are cached as the API server's own webhook authenticator and authorizer cache them, but
shorter: a token's identity for `TOKEN_TTL`, an allow for `ALLOW_TTL`, a refusal for `DENY_TTL`
(so a revoked RoleBinding takes effect within a minute). Tokens are kept only as SHA-256 digests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from typing import Any

from taskop.kube.client import Kube

log = logging.getLogger("taskop.glance")

TOKEN_TTL = 60.0
ALLOW_TTL = 60.0
DENY_TTL = 10.0
MAX_ENTRIES = 10_000


@dataclasses.dataclass(frozen=True)
class Identity:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


class _Cache:
    def __init__(self) -> None:
        self._entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> tuple[bool, Any]:
        held = self._entries.get(key)
        if held is None or held[0] < time.monotonic():
            return False, None
        return True, held[1]

    def put(self, key: Any, value: Any, ttl: float) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
        self._entries[key] = (time.monotonic() + ttl, value)


class Authorizer:
    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self._identities = _Cache()
        self._decisions = _Cache()

    async def identity(self, token: str) -> Identity | None:
        """Whose ``token`` is; None when the API server does not authenticate it."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached, held = self._identities.get(digest)
        if cached:
            return held if isinstance(held, Identity) else None
        status = (await self.kube.review_token(token)).get("status") or {}
        who: Identity | None = None
        if status.get("authenticated"):
            user = status.get("user") or {}
            who = Identity(
                username=str(user.get("username", "")),
                uid=str(user.get("uid", "")),
                groups=tuple(user.get("groups") or ()),
                extra=tuple(sorted((k, tuple(v)) for k, v in (user.get("extra") or {}).items())),
            )
        self._identities.put(digest, who, TOKEN_TTL if who else DENY_TTL)
        return who

    async def allowed(self, who: Identity, verb: str) -> bool:
        """Whether ``who`` may ``verb`` Tasks in the door's namespace (RBAC, or any authorizer
        the cluster runs)."""
        key = (who, verb)
        cached, decision = self._decisions.get(key)
        if cached:
            return bool(decision)
        spec: dict[str, Any] = {
            "user": who.username,
            "groups": list(who.groups),
            "resourceAttributes": {
                "namespace": self.namespace,
                "verb": verb,
                "group": "taskop.dev",
                "resource": "tasks",
            },
        }
        if who.uid:
            spec["uid"] = who.uid
        if who.extra:
            spec["extra"] = {k: list(v) for k, v in who.extra}
        status = (await self.kube.review_access(spec)).get("status") or {}
        allowed = bool(status.get("allowed")) and not status.get("denied")
        self._decisions.put(key, allowed, ALLOW_TTL if allowed else DENY_TTL)
        if not allowed:
            log.info(
                "refused",
                extra={"user": who.username, "verb": verb, "reason": status.get("reason", "")},
            )
        return allowed
