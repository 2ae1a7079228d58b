"""A lean async Kubernetes client for the load generator and the client-side watches.

Plain aiohttp with the kubeconfig's client certificate: the benchmark's own CPU use stays small next
to the operator's, and every timestamp is taken here, when a watch event is seen, for taskop and
bare Jobs alike.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

Obj = dict[str, Any]
TASKS = "/apis/taskop.dev/v1alpha1/namespaces/{ns}/tasks"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
PODS = "/api/v1/namespaces/{ns}/pods"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
ADMISSION = "/apis/admissionregistration.k8s.io/v1"
ADMISSION_PLURALS = {
    "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings",
}


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


class Api:
    """Requests against the cluster of a kubeconfig (file-based certificates, current context)."""

    def __init__(self, kubeconfig: str, connections: int = 64) -> None:
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        ctx_name = cfg.get("current-context") or cfg["contexts"][0]["name"]
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        self.base = cluster["server"].rstrip("/")
        sslctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
        sslctx.load_cert_chain(user["client-certificate"], user["client-key"])
        self._ssl = sslctx
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections),
                timeout=aiohttp.ClientTimeout(total=120),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        content_type: str = "application/json",
        ok_missing: bool = False,
    ) -> Obj:
        data = None if body is None else json.dumps(body)
        for attempt in range(20):
            async with self.session.request(
                method, self.base + path, data=data, headers={"Content-Type": content_type}
            ) as resp:
                raw = await resp.read()
            if resp.status == 404 and ok_missing:
                return {}
            if resp.status in (429, 503) and attempt < 19:  # e.g. a CRD's storage starting
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                continue
            if resp.status >= 400:
                raise ApiError(resp.status, raw.decode(errors="replace"))
            break
        result: Obj = json.loads(raw) if raw else {}
        return result

    async def text(self, path: str) -> str:
        async with self.session.get(self.base + path) as resp:
            return await resp.text()

    async def watch(
        self, path: str, on_event: Callable[[str, Obj, float], None], ready: asyncio.Event
    ) -> None:
        """List, then watch ``path`` forever; ``on_event(type, object, monotonic time seen)``."""
        listing = await self.request("GET", path)
        now = time.monotonic()
        for item in listing["items"]:
            on_event("ADDED", item, now)
        rv = listing["metadata"]["resourceVersion"]
        ready.set()
        forever = aiohttp.ClientTimeout(total=None, sock_read=None)
        while True:
            url = f"{self.base}{path}?watch=1&allowWatchBookmarks=1&resourceVersion={rv}"
            async with self.session.get(url + "&timeoutSeconds=1800", timeout=forever) as resp:
                if resp.status >= 400:
                    raise ApiError(resp.status, await resp.text())
                async for line in resp.content:
                    seen = time.monotonic()
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        raise ApiError(int(obj.get("code", 500)), json.dumps(obj))
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        on_event(event["type"], obj, seen)


@dataclass
class Timeline:
    """When each milestone of each object (keyed by Task / bare Job name) was first seen."""

    marks: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))

    def mark(self, key: str, milestone: str, t: float) -> None:
        self.marks[key].setdefault(milestone, t)

    def count(self, milestone: str, keys: set[str] | None = None) -> int:
        return sum(
            1 for k, m in self.marks.items() if milestone in m and (keys is None or k in keys)
        )

    def durations(self, start: str, end: str, keys: set[str]) -> list[float]:
        out = []
        for k in keys:
            m = self.marks.get(k, {})
            if start in m and end in m:
                out.append(m[end] - m[start])
        return out

    def on_task(self, type_: str, obj: Obj, t: float) -> None:
        name = obj["metadata"]["name"]
        if type_ == "ADDED":
            self.mark(name, "created", t)
        state = (obj.get("status") or {}).get("state")
        if state == "Completed":
            self.mark(name, "completed", t)
        elif state == "Pending":
            self.mark(name, "pending", t)

    def on_job(self, type_: str, obj: Obj, t: float, bare: bool) -> None:
        meta = obj["metadata"]
        owner = [o["name"] for o in meta.get("ownerReferences", []) if o.get("kind") == "Task"]
        key = owner[0] if owner else meta["name"]
        if type_ == "ADDED":
            self.mark(key, "created" if bare else "job", t)
        if not (obj.get("spec") or {}).get("suspend"):  # at once, or when Kueue admits it
            self.mark(key, "unsuspended", t)
        if bare and any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in (obj.get("status") or {}).get("conditions") or []
        ):
            self.mark(key, "completed", t)

    def on_pod(self, type_: str, obj: Obj, t: float) -> None:
        meta = obj["metadata"]
        key = (meta.get("annotations") or {}).get("taskop.dev/task-name") or (
            meta.get("labels") or {}
        ).get("job-name")
        if not key:
            return
        if type_ == "ADDED":
            self.mark(key, "pod", t)
        if (obj.get("spec") or {}).get("nodeName"):  # scheduled (a gated pod: once released)
            self.mark(key, "bound", t)
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self.mark(key, "pod_done", t)


async def watch_namespace(
    api: Api, ns: str, timeline: Timeline, bare: bool
) -> list[asyncio.Task[None]]:
    """Start watches on the Tasks (unless bare), Jobs and Pods of ``ns``; return once all listen."""
    watches: list[tuple[str, Callable[[str, Obj, float], None]]] = [
        (JOBS.format(ns=ns), lambda ty, o, t: timeline.on_job(ty, o, t, bare)),
        (PODS.format(ns=ns), timeline.on_pod),
    ]
    if not bare:
        watches.append((TASKS.format(ns=ns), timeline.on_task))
    tasks = []
    for path, handler in watches:
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(api.watch(path, handler, ready)))
        await ready.wait()
    return tasks


async def apiserver_requests(api: Api) -> dict[str, float]:
    """apiserver_request_total summed by ``VERB resource[/subresource]``."""
    totals: dict[str, float] = defaultdict(float)
    for line in (await api.text("/metrics")).splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, _, value = line[len("apiserver_request_total{") :].rpartition("} ")
        labels = dict(part.split("=", 1) for part in labels_text.split('",') if "=" in part)
        clean = {k: v.strip('"') for k, v in labels.items()}
        if not clean.get("resource"):
            continue
        res = clean["resource"] + (f"/{clean['subresource']}" if clean.get("subresource") else "")
        if clean.get("verb") in ("WATCH", "CONNECT"):
            continue
        totals[f"{clean['verb']} {res}"] += float(value)
    return dict(totals)
