"""The two sides of every comparison: taskop's BBS API and the raw API server, both on aiohttp.

Each operation is timed from the request until its whole body is read (no decoding: that is the
client's cost, the same for any client); `check` functions decode afterwards, outside the timing.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from taskop.bbs import models

PROTOBUF = "application/x-protobuf"
TASKS = "/apis/taskop.dev/v1alpha1/namespaces/{ns}/tasks"
TIMEOUT = aiohttp.ClientTimeout(total=300)

Obj = dict[str, Any]


class HttpError(Exception):
    def __init__(self, what: str, status: int, body: bytes) -> None:
        super().__init__(f"{what}: HTTP {status}: {body[:300]!r}")
        self.status = status


def _session(connections: int, ssl_context: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    # Keep-alive pool as large as the concurrency: no connection set-up inside the timings.
    connector = aiohttp.TCPConnector(limit=connections, ssl=ssl_context or False)
    return aiohttp.ClientSession(connector=connector, timeout=TIMEOUT, trust_env=False)


class Raw:
    """The API server, authenticated by the kubeconfig's client certificate."""

    def __init__(self, kubeconfig: str, connections: int) -> None:
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        ctx_name = cfg.get("current-context") or cfg["contexts"][0]["name"]
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        self.base = cluster["server"].rstrip("/")
        context = ssl.create_default_context(cafile=cluster["certificate-authority"])
        context.load_cert_chain(user["client-certificate"], user["client-key"])
        self.session = _session(connections, context)

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if method == "PATCH":
            hdrs["Content-Type"] = "application/merge-patch+json"
        async with self.session.request(method, self.base + path, data=data, headers=hdrs) as r:
            raw = await r.read()
            if r.status not in ok:
                raise HttpError(f"{method} {path}", r.status, raw)
            return raw

    async def ensure_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await self.request("POST", "/api/v1/namespaces", body, ok=(201, 409))

    async def delete_namespace(self, name: str) -> None:
        await self.request("DELETE", f"/api/v1/namespaces/{name}", ok=(200, 202, 404))

    # --- the timed operations
    async def get_task(self, ns: str, name: str) -> bytes:
        return await self.request("GET", f"{TASKS.format(ns=ns)}/{name}")

    async def list_tasks(self, ns: str, encoding: str) -> bytes:
        return await self.request("GET", TASKS.format(ns=ns), headers={"Accept-Encoding": encoding})

    async def create_task(self, ns: str, body: Obj) -> Obj:
        created: Obj = json.loads(await self.request("POST", TASKS.format(ns=ns), body))
        return created

    async def patch_status(self, ns: str, obj: Obj, status: Obj) -> None:
        meta = obj["metadata"]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        await self.request("PATCH", f"{TASKS.format(ns=ns)}/{meta['name']}/status", patch)


class BBS:
    """taskop's BBS API over plain HTTP."""

    def __init__(self, port: int, connections: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = _session(connections)

    async def close(self) -> None:
        await self.session.close()

    async def post(self, path: str, body: bytes) -> bytes:
        headers = {"Content-Type": PROTOBUF}
        async with self.session.post(self.base + path, data=body, headers=headers) as r:
            raw = await r.read()
            if r.status != 200:
                raise HttpError(f"POST {path}", r.status, raw)
            return raw

    async def wait_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                ping = models.PingResponse.FromString(await self.post("/v1/ping", b""))
                if ping.available:
                    return
            except (aiohttp.ClientError, HttpError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.base} did not become available")
            await asyncio.sleep(0.2)

    # --- the timed operations (pre-serialized requests)
    async def task_by_guid(self, request: bytes) -> bytes:
        return await self.post("/v1/tasks/get_by_task_guid.r3", request)

    async def tasks(self) -> bytes:
        return await self.post("/v1/tasks/list.r3", b"")

    async def desire(self, request: bytes) -> bytes:
        return await self.post("/v1/tasks/desire.r2", request)


def check_bbs(raw: bytes, message_type: type[Any]) -> Any:
    """The decoded response; raises when it carries a BBS error."""
    message = message_type.FromString(raw)
    if message.HasField("error"):
        raise RuntimeError(f"BBS error: {message.error}")
    return message
