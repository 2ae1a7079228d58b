"""Domain profiles: what the admin says per BBS domain, checked field by field at start."""

from __future__ import annotations

import pytest

from taskop.domain.profiles import JOB_RUN, Policy, ProfileError, parse_profiles

CF_TASKS = {
    "domains": {
        "cf-tasks": {
            "podTemplate": {
                "nodeSelector": {"pool": "cf"},
                "tolerations": [{"key": "cf", "operator": "Exists", "effect": "NoSchedule"}],
                "serviceAccountName": "cf-task",
                "runtimeClassName": "gvisor",
                "priorityClassName": "cf-tasks",
            },
            "stacks": {"cflinuxfs4": "registry.example/cflinuxfs4:1.0"},
            "unenforceable": "warn",
            "podPidsLimit": 1024,
            "trustedCertificates": {"configMap": "cf-system-certificates"},
        },
        "legacy": {"run": "external"},
    }
}


def test_a_profile_says_how_its_domains_tasks_run() -> None:
    profiles = parse_profiles(CF_TASKS)
    cf = profiles.profile("cf-tasks")
    assert cf.stacks == {"cflinuxfs4": "registry.example/cflinuxfs4:1.0"}
    assert cf.unenforceable is Policy.WARN
    assert cf.pod_pids_limit == 1024
    assert cf.pod_template.runtime_class_name == "gvisor"
    assert cf.trusted_certificates is not None
    assert cf.trusted_certificates.config_map == "cf-system-certificates"
    assert not profiles.external("cf-tasks")
    assert profiles.external("legacy")


def test_a_domain_nobody_described_runs_as_jobs_and_refuses_what_it_cannot_enforce() -> None:
    profiles = parse_profiles(None)
    assert profiles.profile("anything") == JOB_RUN
    assert JOB_RUN.unenforceable is Policy.REFUSE and not JOB_RUN.external


def test_the_short_form_names_external_domains() -> None:
    profiles = parse_profiles(CF_TASKS, ["cells", "legacy"])
    assert profiles.external("cells") and profiles.external("legacy")
    assert not profiles.external("cf-tasks")


def test_the_short_form_cannot_contradict_a_profile() -> None:
    with pytest.raises(ProfileError, match=r"^domains\.cf-tasks: TASKOP_BBS_EXTERNAL_DOMAINS"):
        parse_profiles(CF_TASKS, ["cf-tasks"])


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"run": "cells"}, "domains.d.run: Input should be 'job', 'external' or 'taskstore'"),
        (
            {"unenforceable": "ignore"},
            "domains.d.unenforceable: Input should be 'refuse' or 'warn'",
        ),
        ({"podPidsLimit": 0}, "domains.d.podPidsLimit: Input should be greater than or equal to 1"),
        ({"stacks": {"cf linux": "x"}}, "domains.d.stacks.cf linux.[key]: String should match"),
        ({"podTemplate": {"hostNetwork": True}}, "domains.d.podTemplate.hostNetwork: Extra inputs"),
        (
            {"trustedCertificates": {"configMap": "a", "secret": "b"}},
            "domains.d.trustedCertificates: Value error, name exactly one of configMap and secret",
        ),
    ],
)
def test_a_wrong_field_is_named(profile: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profiles({"domains": {"d": profile}})
    assert str(info.value).startswith(message)


def test_a_wrong_egress_destination_is_named() -> None:
    with pytest.raises(ProfileError, match=r"^domains\.d\.allowEgressTo: Value error, '10\.0\.0'"):
        parse_profiles({"domains": {"d": {"allowEgressTo": ["10.0.0"]}}})


def test_one_domain_at_most_is_the_taskstore_apis() -> None:
    profiles = parse_profiles({"domains": {"work": {"run": "taskstore"}, "cf": {}}})
    assert profiles.taskstore_domain() == "work" and profiles.profile("work").taskstore
    assert not profiles.external("work")
    with pytest.raises(ProfileError, match="at most one domain is run: taskstore"):
        parse_profiles({"domains": {"a": {"run": "taskstore"}, "b": {"run": "taskstore"}}})
