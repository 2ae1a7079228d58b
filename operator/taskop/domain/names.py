"""Kubernetes names for BBS guids and Tasks: deterministic and collision-free.

Scheme: a string that already is a DNS-1123 label of at most 63 characters and contains no ``--``
is used as it is. Anything else becomes ``<sanitized prefix>--<16 hex digits of sha256>``. Identity
names never contain ``--`` and hashed names always do, so the two sets are disjoint; identity is
injective and hashed names collide only if 64 bits of sha256 do.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME_LENGTH = 63  # a DNS-1123 label; also the limit of label values
HASH_LENGTH = 16
SEPARATOR = "--"
_PREFIX_LENGTH = MAX_NAME_LENGTH - len(SEPARATOR) - HASH_LENGTH
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_INVALID = re.compile(r"[^a-z0-9]+")


def is_identity_name(value: str) -> bool:
    """Whether ``value`` is used unchanged as a name."""
    return (
        len(value) <= MAX_NAME_LENGTH
        and _DNS_LABEL.fullmatch(value) is not None
        and SEPARATOR not in value
    )


def digest(value: str) -> str:
    """16 lowercase hex digits of sha256(value)."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:HASH_LENGTH]


def safe_name(value: str) -> str:
    """``value`` if it is an identity name, else a readable prefix + ``--`` + its digest."""
    if is_identity_name(value):
        return value
    prefix = _INVALID.sub("-", value.lower()).strip("-")[:_PREFIX_LENGTH].rstrip("-")
    return f"{prefix or 'x'}{SEPARATOR}{digest(value)}"


def task_name(guid: str) -> str:
    """The Task (metadata.name) a BBS client's guid maps to: ``ABC_1`` → ``abc-1--<hash>``."""
    return safe_name(guid)


def job_name(task_name: str) -> str:
    """The Job of a Task: the Task's name when it is a short DNS label, else hashed (≤ 63)."""
    return safe_name(task_name)


def label_value(value: str) -> str:
    """A label value for ``value``: itself when it is one without ``--``, else `safe_name`."""
    if len(value) <= MAX_NAME_LENGTH and _LABEL_VALUE.fullmatch(value) and SEPARATOR not in value:
        return value
    return safe_name(value)


def guid_label_value(guid: str) -> str:
    """A label value (≤ 63 chars) identifying ``guid``, for looking Tasks up by guid."""
    return label_value(guid)


def registry_secret_name(task_name: str) -> str:
    """The image pull Secret of a BBS task with ``image_username``/``image_password``."""
    return safe_name(f"{task_name}-registry")


def files_secret_name(task: str) -> str:
    """The Secret holding a BBS task's volume-mounted files (made with the Task, owned by it)."""
    return safe_name(f"{task}-files")


def definition_secret_name(task: str) -> str:
    """The Secret holding an external BBS task's whole TaskDefinition, or a Job-run one's
    environment values (made with the Task, owned by it; the BBS door reads the definition back
    through its watch)."""
    return safe_name(f"{task}-definition")
