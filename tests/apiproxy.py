"""A reverse proxy in front of the real API server that delays or refuses chosen requests.

Chaos for the real cluster where timing decides: a test points the operator at the proxy (its
own kubeconfig) and makes, say, the first LIST of pods arrive five seconds late, so an order of
events that a race produces once in a thousand runs happens every time. Everything else passes
through unchanged, watches streamed as they come. Test traffic stays on loopback.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def a_list(path: str) -> str:
    """A rule's path pattern for a LIST of ``path`` (its query, if any, is not a watch's)."""
    return rf"^{re.escape(path)}(\?(?!.*watch=(true|1)).*)?$"


@dataclass
class Rule:
    """Requests whose method and path (query included) match are held ``delay`` seconds, then
    refused with ``status`` (if given) or passed on. ``times`` limits how many it applies to."""

    method: str
    path: re.Pattern[str]
    delay: float = 0.0
    status: int | None = None
    times: int | None = None
    hits: int = 0

    def matches(self, method: str, path_qs: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return self.method in (method, "*") and bool(self.path.search(path_qs))


@dataclass
class ApiProxy:
    upstream_kubeconfig: str
    workdir: Path
    rules: list[Rule] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        method: str,
        path: str,
        *,
        delay: float = 0.0,
        status: int | None = None,
        times: int | None = None,
    ) -> Rule:
        rule = Rule(method, re.compile(path), delay, status, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _match(self, method: str, path_qs: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path_qs):
                    rule.hits += 1
                    return rule
        return None

    # --- the kubeconfig the operator under test uses
    def kubeconfig(self) -> str:
        path = self.workdir / "proxy-kubeconfig"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "proxy",
                            "cluster": {
                                "server": f"https://127.0.0.1:{self.port}",
                                "certificate-authority": str(self.workdir / "proxy.crt"),
                            },
                        }
                    ],
                    # The proxy speaks to the API server as the upstream kubeconfig's user.
                    "users": [{"name": "proxy", "user": {"token": "through-the-proxy"}}],
                    "contexts": [
                        {"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}
                    ],
                    "current-context": "proxy",
                }
            )
        )
        return str(path)

    # --- the server
    def start(self) -> ApiProxy:
        self.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-keyout", str(self.workdir / "proxy.key"),
                "-out", str(self.workdir / "proxy.crt"),
                "-subj", "/CN=taskop-test-proxy",
                "-addext", "subjectAltName=IP:127.0.0.1",
                "-addext", "basicConstraints=critical,CA:TRUE",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self._thread.start()
        if not started.wait(30):
            raise RuntimeError("the API proxy did not start in 30 s")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        upstream = yaml.safe_load(Path(self.upstream_kubeconfig).read_text())
        cluster = upstream["clusters"][0]["cluster"]
        user = upstream["users"][0]["user"]
        client_ssl = ssl.create_default_context(cafile=cluster["certificate-authority"])
        client_ssl.load_cert_chain(user["client-certificate"], user["client-key"])
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(self.workdir / "proxy.crt", self.workdir / "proxy.key")
        base = cluster["server"]

        async def setup() -> web.AppRunner:
            session = ClientSession(  # bytes pass as the API server sent them (gzip included)
                connector=TCPConnector(ssl=client_ssl),
                timeout=ClientTimeout(total=None),
                auto_decompress=False,
            )

            async def forward(request: web.Request) -> web.StreamResponse:
                rule = self._match(request.method, request.path_qs)
                if rule is not None and rule.delay:
                    await asyncio.sleep(rule.delay)
                if rule is not None and rule.status is not None:
                    return web.json_response(
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "status": "Failure",
                            "message": "refused by the test's API proxy",
                            "code": rule.status,
                        },
                        status=rule.status,
                    )
                headers = {
                    k: v
                    for k, v in request.headers.items()
                    if k.lower() not in HOP_BY_HOP and k.lower() != "authorization"
                }
                body = await request.read()
                async with session.request(
                    request.method, base + request.path_qs, headers=headers, data=body or None
                ) as up:
                    response = web.StreamResponse(
                        status=up.status,
                        headers={
                            k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP
                        },
                    )
                    await response.prepare(request)
                    try:
                        async for chunk in up.content.iter_any():
                            await response.write(chunk)
                    except (ConnectionResetError, asyncio.CancelledError):
                        raise
                    await response.write_eof()
                    return response

            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", forward)
            app.on_cleanup.append(lambda _: session.close())
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return runner

        runner = loop.run_until_complete(setup())
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()


def api_proxy(upstream_kubeconfig: str, workdir: Path) -> Iterator[ApiProxy]:
    proxy = ApiProxy(upstream_kubeconfig, workdir).start()
    try:
        yield proxy
    finally:
        proxy.stop()
