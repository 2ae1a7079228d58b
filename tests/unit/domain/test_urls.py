from __future__ import annotations

import pytest

from taskop.domain.urls import redact_url, redact_urls

SIGNED = (
    "https://user:pa55word@bucket.s3.example.com/droplets/app.tgz"
    "?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=0123abcd#frag"
)
SECRETS = ("user", "pa55word", "AKIAEXAMPLE", "X-Amz-Signature", "0123abcd", "frag", "?", "#")


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (SIGNED, "https://bucket.s3.example.com/droplets/app.tgz"),
        ("http://files/lifecycle.tgz", "http://files/lifecycle.tgz"),
        ("http://h:8080/p?", "http://h:8080/p"),
        ("http://user@h/p#x", "http://h/p"),
        ("//user:pass@h/p?q=1", "//h/p"),
        ("mailto:user:pass@h", "mailto:h"),
        ("http://user:pa55word@h:bad/p?sig=1", "http://h:bad/p"),
        ("http://[::1/x?X-Amz-Signature=0123abcd", "http://[::1/x"),  # does not parse
        ("", ""),
    ],
)
def test_redact_url(raw: str, want: str) -> None:
    assert redact_url(raw) == want


def test_redact_url_shows_no_secret() -> None:
    shown = redact_url(SIGNED)
    assert not [s for s in SECRETS if s in shown]


def test_redact_urls_in_text() -> None:
    text = f'Location header "{SIGNED}" is bad; then {SIGNED} and http://plain/x'
    assert redact_urls(text) == (
        'Location header "https://bucket.s3.example.com/droplets/app.tgz" is bad; then'
        " https://bucket.s3.example.com/droplets/app.tgz and http://plain/x"
    )
    assert redact_urls("no URL here") == "no URL here"
