"""Mutual TLS like the real BBS (spec §7): RSA server certificate, client certificates required."""

from __future__ import annotations

import ssl

from taskop.settings import Settings

# What Go's tlsconfig internal-service defaults offer for TLS 1.2 (TLS 1.3 suites are fixed).
CIPHERS = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's SSL context, or None for plain HTTP (no TLS settings)."""
    if not settings.bbs_tls:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.load_cert_chain(settings.bbs_tls_cert_file, settings.bbs_tls_key_file)
    context.load_verify_locations(cafile=settings.bbs_tls_ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    return context
