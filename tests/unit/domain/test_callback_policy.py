"""Where completion callbacks may connect, and which of them present taskop's client certificate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from taskop.domain.callback import (
    DEFAULT_DENIED_DESTINATIONS,
    DestinationPolicy,
    presents_client_certificate,
)
from taskop.domain.profiles import DomainProfile, parse_profiles
from taskop.settings import Settings, SettingsError

DEFAULT = DestinationPolicy.parse(DEFAULT_DENIED_DESTINATIONS)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "::1",
        "::ffff:127.0.0.1",  # IPv4-mapped: 127.0.0.1 on the wire
        "0.0.0.0",
        "::",
        "169.254.169.254",  # cloud metadata
        "169.254.1.1",
        "::ffff:169.254.169.254",
        "fe80::1",
        "fe80::1%eth0",  # with a zone, as getaddrinfo gives link-local addresses
        "fd00:ec2::254",
        "100.100.100.200",
    ],
)
def test_the_default_refuses_loopback_unspecified_link_local_and_metadata(address: str) -> None:
    assert not DEFAULT.allows(address)


@pytest.mark.parametrize(
    "address", ["10.0.16.5", "192.168.1.1", "8.8.8.8", "2001:db8::1", "fd00::1", "::ffff:10.1.2.3"]
)
def test_the_default_allows_other_addresses(address: str) -> None:
    assert DEFAULT.allows(address)


@pytest.mark.parametrize("host", ["localhost", "cc.example.com", "", "127.1", "2130706433"])
def test_only_ip_addresses_are_ever_allowed_never_a_name(host: str) -> None:
    """The policy judges resolved addresses; a name (or a legacy numeric form) is never allowed."""
    assert not DestinationPolicy.parse("").allows(host)


def test_allowed_networks_are_exceptions_to_the_denied_ones() -> None:
    loopback_ok = DestinationPolicy.parse(DEFAULT_DENIED_DESTINATIONS, "127.0.0.1")
    assert loopback_ok.allows("127.0.0.1")
    assert loopback_ok.allows("::ffff:127.0.0.1")
    assert not loopback_ok.allows("127.0.0.2")
    assert not loopback_ok.allows("169.254.169.254")

    only_cc = DestinationPolicy.parse("0.0.0.0/0,::/0", "10.0.16.0/24, 2001:db8:cc::/48")
    assert only_cc.allows("10.0.16.200")
    assert only_cc.allows("2001:db8:cc::7")
    assert not only_cc.allows("10.0.17.1")
    assert not only_cc.allows("8.8.8.8")
    assert not only_cc.allows("2001:db8::1")

    ranges = DestinationPolicy.parse("10.0.0.1-10.0.0.9")
    assert not ranges.allows("10.0.0.5") and ranges.allows("10.0.0.10")

    nothing_denied = DestinationPolicy.parse("")
    assert nothing_denied.allows("127.0.0.1")


def test_the_settings_default_is_the_policy_default_and_a_bad_entry_is_named() -> None:
    settings = Settings.from_env({})
    assert settings.callback_denied_destinations == DEFAULT_DENIED_DESTINATIONS
    assert not settings.callback_policy().allows("127.0.0.1")
    allowed = Settings.from_env({"TASKOP_CALLBACK_ALLOWED_DESTINATIONS": "127.0.0.0/8"})
    assert allowed.callback_policy().allows("127.0.0.1")
    with pytest.raises(SettingsError, match="TASKOP_CALLBACK_ALLOWED_DESTINATIONS: 'localhost'"):
        Settings.from_env({"TASKOP_CALLBACK_ALLOWED_DESTINATIONS": "10.0.0.0/8,localhost"})
    with pytest.raises(SettingsError, match=r"TASKOP_CALLBACK_DENIED_DESTINATIONS: '300\.0\.0\.1'"):
        Settings.from_env({"TASKOP_CALLBACK_DENIED_DESTINATIONS": "300.0.0.1"})


def test_the_chart_default_is_the_settings_default() -> None:
    """values.yaml repeats the default (an empty list there would deny nothing)."""
    values = yaml.safe_load(
        (Path(__file__).resolve().parents[3] / "charts/taskop/values.yaml").read_text()
    )
    callbacks = values["callbacks"]
    assert ",".join(callbacks["deniedDestinations"]) == DEFAULT_DENIED_DESTINATIONS
    assert callbacks["allowedDestinations"] == []


BBS_STATUS = {"state": "Completed", "api": "bbs"}


def test_only_tasks_the_bbs_api_desired_present_the_client_certificate() -> None:
    """The mark is in status, which only taskop writes; a label or a domain, which a Task's
    creator chooses, gives nothing."""
    default = DomainProfile()
    assert presents_client_certificate(BBS_STATUS, default)
    assert not presents_client_certificate({"state": "Completed"}, default)
    assert not presents_client_certificate(None, default)
    assert not presents_client_certificate({"api": "glance"}, default)


def test_a_domain_profile_may_give_the_certificate_to_all_its_tasks_or_to_none() -> None:
    profiles = parse_profiles(
        {
            "domains": {
                "cf": {"callbackClientCertificate": "bbs"},
                "trusted": {"callbackClientCertificate": "all"},
                "other": {"callbackClientCertificate": "none"},
            }
        }
    )
    assert presents_client_certificate(BBS_STATUS, profiles.profile("cf"))
    assert presents_client_certificate({}, profiles.profile("trusted"))
    assert not presents_client_certificate(BBS_STATUS, profiles.profile("other"))
    assert not presents_client_certificate({}, profiles.profile("unlisted"))
    with pytest.raises(ValueError, match="callbackClientCertificate"):
        parse_profiles({"domains": {"x": {"callbackClientCertificate": "yes"}}})
