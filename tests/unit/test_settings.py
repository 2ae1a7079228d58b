"""Settings read at start: a wrong value stops the operator with a message naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskop.settings import Settings, SettingsError


def test_domain_profiles_are_read_from_the_file_and_the_short_form(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text("domains:\n  cf-tasks:\n    stacks: {cflinuxfs4: busybox}\n")
    settings = Settings.from_env(
        {"TASKOP_DOMAIN_PROFILES_FILE": str(path), "TASKOP_BBS_EXTERNAL_DOMAINS": "cells, x"}
    )
    assert settings.profiles.profile("cf-tasks").stacks == {"cflinuxfs4": "busybox"}
    assert settings.profiles.external("cells") and settings.profiles.external("x")
    assert settings.job_settings().profiles == settings.profiles


def test_a_wrong_profile_stops_the_operator_naming_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text("domains:\n  cf-tasks:\n    unenforceable: ignore\n")
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"TASKOP_DOMAIN_PROFILES_FILE": str(path)})
    assert str(info.value).startswith(
        f"domain profiles ({path}): domains.cf-tasks.unenforceable: Input should be"
    )


def test_a_missing_profiles_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^TASKOP_DOMAIN_PROFILES_FILE='/nowhere' cannot"):
        Settings.from_env({"TASKOP_DOMAIN_PROFILES_FILE": "/nowhere"})
