"""The completion callback (spec §5): its JSON body, byte for byte as Go's, and retry rules."""

from __future__ import annotations

import enum

from taskop.domain.lifecycle import TaskRecord

_HEX = "0123456789abcdef"
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def go_json_string(text: str) -> str:
    """A JSON string literal as Go's ``encoding/json`` writes it (HTML-safe escaping).

    ``<``, ``>``, ``&``, U+2028 and U+2029 become ``\\u`` escapes; other control characters
    ``\\u00XX``; non-ASCII stays raw; invalid UTF-8 (lone surrogates here) becomes ``\\ufffd``.
    """
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _SHORT:
            out.append(_SHORT[char])
        elif code < 0x20 or char in "<>&":
            out.append(f"\\u00{_HEX[code >> 4]}{_HEX[code & 0xF]}")
        elif code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def callback_body(rec: TaskRecord, annotation: str) -> bytes:
    """``json.Marshal(TaskCallbackResponse{…})`` of BBS: fixed key order, no spaces."""
    parts = [
        f'"task_guid":{go_json_string(rec.guid)}',
        f'"failed":{"true" if rec.failed else "false"}',
        f'"failure_reason":{go_json_string(rec.failure_reason)}',
        f'"result":{go_json_string(rec.result)}',
    ]
    if annotation:
        parts.append(f'"annotation":{go_json_string(annotation)}')
    parts.append(f'"created_at":{rec.created_at}')
    return ("{" + ",".join(parts) + "}").encode()


class CallbackVerdict(enum.StrEnum):
    DELIVERED = "Delivered"  # done: the task can be deleted
    RETRY = "Retry"  # transient: try again (up to the attempt limit)
    GIVE_UP = "GiveUp"  # not deliverable this round; convergence tries again later


_TRANSIENT_CLIENT_ERRORS = frozenset({"ClientConnectionError", "ServerTimeoutError"})


def classify_callback(status: int | None, error: BaseException | None) -> CallbackVerdict:
    """Any HTTP status but 503/504 is delivered (4xx and 500 included, as in BBS).

    Timeouts and connection errors (``OSError``, and aiohttp's client connection errors, recognised
    by class name to keep this module free of aiohttp) are retried; other errors give up.
    """
    if error is not None:
        transient = isinstance(error, TimeoutError | ConnectionError | OSError) or any(
            cls.__name__ in _TRANSIENT_CLIENT_ERRORS for cls in type(error).__mro__
        )
        return CallbackVerdict.RETRY if transient else CallbackVerdict.GIVE_UP
    if status is None:
        return CallbackVerdict.GIVE_UP
    return CallbackVerdict.RETRY if status in (503, 504) else CallbackVerdict.DELIVERED
