from __future__ import annotations

import itertools
import random
import re

import pytest

from taskop.domain.names import (
    digest,
    guid_label_value,
    is_identity_name,
    job_name,
    label_value,
    safe_name,
    task_name,
)

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


@pytest.mark.parametrize("guid", ["a", "abc-123", "x" * 63, "0", "9-9"])
def test_identity(guid: str) -> None:
    assert task_name(guid) == guid
    assert is_identity_name(guid)


@pytest.mark.parametrize(
    ("guid", "prefix"),
    [
        ("ABC", "abc"),
        ("my_task", "my-task"),
        ("a--b", "a-b"),
        ("-a", "a"),
        ("a-", "a"),
        ("_", "x"),
        ("---", "x"),
        ("x" * 64, "x" * 45),
        ("Task_" + "y" * 300, "task-" + "y" * 40),
        ("a.b", "a-b"),
    ],
)
def test_hashed(guid: str, prefix: str) -> None:
    name = task_name(guid)
    assert name == f"{prefix}--{digest(guid)}"
    assert DNS_LABEL.fullmatch(name) and len(name) <= 63


def test_digest_is_sha256_prefix() -> None:
    assert digest("abc") == "ba7816bf8f01cfea"


def test_job_name() -> None:
    assert job_name("hello") == "hello"
    long_name = "a." * 100 + "b"
    assert len(job_name(long_name)) <= 63
    assert job_name(long_name) == job_name(long_name)
    assert "--" in job_name(long_name)


@pytest.mark.parametrize(
    ("guid", "expected"),
    [("abc", "abc"), ("My_Guid-1", "My_Guid-1"), ("a.b", "a.b"), ("_a", None), ("a--b", None)],
)
def test_guid_label_value(guid: str, expected: str | None) -> None:
    value = guid_label_value(guid)
    assert value == (expected or safe_name(guid))
    assert LABEL_VALUE.fullmatch(value) and len(value) <= 63


def _guids() -> list[str]:
    rng = random.Random(42)
    alphabet = "abcAB_-019"
    guids = ["".join(p) for n in range(1, 5) for p in itertools.product("aB_-0", repeat=n)]
    guids += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120))) for _ in range(3000)
    ]
    guids += ["a" * n for n in range(1, 130)] + ["A" * n for n in range(1, 130)]
    return sorted(set(guids))


GUIDS = _guids()


def test_names_are_valid_and_deterministic() -> None:
    for guid in GUIDS:
        name = task_name(guid)
        assert DNS_LABEL.fullmatch(name), guid
        assert len(name) <= 63
        assert task_name(guid) == name
        assert is_identity_name(name) == ("--" not in name)
        assert is_identity_name(name) == (name == guid)
        value = guid_label_value(guid)
        assert LABEL_VALUE.fullmatch(value) and len(value) <= 63


def test_names_are_collision_free() -> None:
    names = [task_name(guid) for guid in GUIDS]
    assert len(set(names)) == len(GUIDS)
    labels = [guid_label_value(guid) for guid in GUIDS]
    assert len(set(labels)) == len(GUIDS)


def test_identity_and_hashed_sets_are_disjoint() -> None:
    identity = {task_name(g) for g in GUIDS if is_identity_name(g)}
    hashed = {task_name(g) for g in GUIDS if not is_identity_name(g)}
    assert identity and hashed
    assert all("--" not in n for n in identity)
    assert all("--" in n for n in hashed)
    assert not identity & hashed


def test_a_hashed_name_used_as_guid_is_hashed_again() -> None:
    """Even a guid spelled like another guid's hashed name maps elsewhere."""
    for guid in ["ABC", "my_task", "a--b"]:
        hashed = task_name(guid)
        assert task_name(hashed) != hashed


def test_label_value_is_identity_for_plain_values() -> None:
    assert label_value("Task.1_x") == "Task.1_x"
