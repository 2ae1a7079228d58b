"""The domain routes of BBS (`routes.go`: Domains, UpsertDomain), kept by `DomainStore`."""

from __future__ import annotations

import time

from aiohttp import web

from taskop.bbs import models
from taskop.bbs.domains import DomainStore
from taskop.bbs.http import protobuf, read_request
from taskop.bbs.keys import KUBE, SETTINGS
from taskop.bbs.middleware import responds_with
from taskop.bbs.validation import check, validate_request

routes = web.RouteTableDef()


def _store(request: web.Request) -> DomainStore:
    return DomainStore(request.app[KUBE], request.app[SETTINGS].bbs_namespace)


@routes.post("/v1/domains/upsert")
@responds_with(models.UpsertDomainResponse)
async def upsert_domain(request: web.Request) -> web.Response:
    req = await read_request(
        request, models.UpsertDomainRequest, request.app[SETTINGS].bbs_max_body_bytes
    )
    check(validate_request(req))
    await _store(request).upsert(req.domain, req.ttl, time.time_ns())
    return protobuf(models.UpsertDomainResponse())


@routes.post("/v1/domains/list")
@responds_with(models.DomainsResponse)
async def domains(request: web.Request) -> web.Response:
    return protobuf(models.DomainsResponse(domains=await _store(request).list(time.time_ns())))
