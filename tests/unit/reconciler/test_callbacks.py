"""A failed callback names its URL, in logs and status.callback.lastError, only redacted."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import aiohttp
import pytest

from taskop.reconciler.callbacks import post_callback

SIGNED = "https://user:pa55word@cc.example.com/internal/v4/tasks/t1/completed?token=s3cr3t#frag"
SECRETS = ("user", "pa55word", "s3cr3t", "token", "frag")


class _FailingSession:
    """Every post fails with ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def post(self, url: str, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.InvalidURL(SIGNED),  # its text is the URL
        aiohttp.ClientConnectionError(f"Cannot connect to {SIGNED}"),
    ],
    ids=["InvalidURL", "ClientConnectionError"],
)
def test_failed_callback_shows_no_url_secret(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    session = cast(aiohttp.ClientSession, _FailingSession(error))
    with caplog.at_level(logging.INFO, logger="taskop.callbacks"):
        delivered, last_error, _ = asyncio.run(post_callback(session, SIGNED, b"{}", 2, 1.0))
    assert not delivered
    logged = [
        f"{r.getMessage()} {r.__dict__.get('url')} {r.__dict__.get('error')}"
        for r in caplog.records
    ]
    assert any("https://cc.example.com/internal/v4/tasks/t1/completed" in s for s in logged)
    for shown in [last_error, *logged]:
        assert not [s for s in SECRETS if s in shown], shown


def test_a_failed_attempts_log_line_names_what_caused_the_error_without_secrets() -> None:
    from taskop.reconciler.callbacks import _why

    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as reset:
            raise OSError("Can not write request body for https://u:pa55@cc.example/cb") from reset
    except OSError as error:
        why = _why(error)
    assert why.startswith("OSError: Can not write request body")
    assert "caused by ConnectionResetError: [Errno 104] Connection reset by peer" in why
    assert "pa55" not in why
