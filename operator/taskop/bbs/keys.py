"""Typed application state of the BBS app (`web.AppKey`s)."""

from __future__ import annotations

from aiohttp import web

from taskop.bbs.hub import EventHub
from taskop.bbs.service import TaskService
from taskop.bbs.view import TaskView
from taskop.kube.client import Kube
from taskop.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
KUBE = web.AppKey("kube", Kube)
VIEW = web.AppKey("view", TaskView)
HUB = web.AppKey("hub", EventHub)
SERVICE = web.AppKey("service", TaskService)
