"""BBS egress rules as a Task's NetworkPolicy (taskop.domain.egress)."""

from __future__ import annotations

import pytest

from taskop.domain.addresses import cidrs
from taskop.domain.egress import network_policy, unenforceable
from taskop.domain.spec import EgressRule, parse_spec

# Cloud Controller's default running security groups, as egress_rules.rb sends them: one rule
# per destination, ports "53" → [53].
PUBLIC_NETWORKS = [
    {"protocol": "all", "destinations": [d]}
    for d in (
        "0.0.0.0-9.255.255.255",
        "11.0.0.0-169.253.255.255",
        "169.255.0.0-172.15.255.255",
        "172.32.0.0-192.167.255.255",
        "192.169.0.0-255.255.255.255",
    )
]
DNS = [
    {"protocol": "tcp", "destinations": ["0.0.0.0/0"], "ports": [53]},
    {"protocol": "udp", "destinations": ["0.0.0.0/0"], "ports": [53]},
]


def rules(egress: list[dict[str, object]]) -> list[EgressRule]:
    spec = parse_spec({"image": "x", "action": {"run": {"path": "x"}}, "egressRules": egress})
    return list(spec.egress_rules)


def test_cloud_controllers_default_security_groups_field_by_field() -> None:
    policy = network_policy("t1", "ns", "uid-1", rules(PUBLIC_NETWORKS + DNS))

    assert policy["metadata"]["name"] == "t1"
    assert policy["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "taskop.dev/v1alpha1",
            "kind": "Task",
            "name": "t1",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    spec = policy["spec"]
    # Only this Task's pod (the Job's pod template carries these labels), egress only.
    assert spec["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "taskop", "taskop.dev/task": "t1"}
    }
    assert spec["policyTypes"] == ["Egress"]
    public = spec["egress"][:5]
    assert all("ports" not in rule for rule in public)  # protocol all: every port
    assert public[0]["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/5"}},
        {"ipBlock": {"cidr": "8.0.0.0/7"}},
    ]
    assert public[2]["to"] == [
        {"ipBlock": {"cidr": c}} for c in ("169.255.0.0/16", "170.0.0.0/7", "172.0.0.0/12")
    ]
    assert public[4]["to"][0] == {"ipBlock": {"cidr": "192.169.0.0/16"}}
    assert spec["egress"][5:] == [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 53}]},
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "UDP", "port": 53}]},
    ]


def test_a_port_range_is_port_and_end_port() -> None:
    egress = [
        {"protocol": "tcp", "destinations": ["10.1.2.3"], "portRange": {"start": 8000, "end": 8100}}
    ]
    policy = network_policy("t", "ns", "u", rules(egress))
    assert policy["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}],
            "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}],
        }
    ]


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("10.0.0.0/8", ["10.0.0.0/8"]),
        ("10.1.2.3/8", ["10.0.0.0/8"]),  # host bits: the network, as Go's ParseCIDR reads it
        ("10.0.0.1", ["10.0.0.1/32"]),
        ("2001:db8::1", ["2001:db8::1/128"]),
        ("10.0.0.0-10.0.0.255", ["10.0.0.0/24"]),
        ("10.0.0.1-10.0.0.4", ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/32"]),
        ("10.0.0.1,10.0.0.2", ["10.0.0.1/32", "10.0.0.2/32"]),
    ],
)
def test_destinations_become_the_cidrs_covering_exactly_them(
    destination: str, expected: list[str]
) -> None:
    assert cidrs(destination) == expected


def test_icmp_and_logging_have_no_form_and_are_named() -> None:
    egress = [
        {"protocol": "all", "destinations": ["0.0.0.0/0"], "log": True},
        {"protocol": "icmp", "destinations": ["0.0.0.0/0"], "icmpInfo": {"type": 8, "code": 0}},
    ]
    assert unenforceable(rules(egress)) == [
        "spec.egressRules[0]: log: true has no Kubernetes NetworkPolicy form"
        " (logging is the CNI's)",
        "spec.egressRules[1]: icmp type 8 code 0 has no Kubernetes NetworkPolicy form"
        " (NetworkPolicy allows only TCP, UDP and SCTP)",
    ]


def test_under_the_warn_policy_icmp_stays_denied_and_a_logged_rule_allows_unlogged() -> None:
    egress = [
        {"protocol": "icmp", "destinations": ["0.0.0.0/0"], "icmpInfo": {"type": 8, "code": 0}},
        {"protocol": "tcp", "destinations": ["10.0.0.1"], "ports": [443], "log": True},
    ]
    policy = network_policy("t", "ns", "uid", rules(egress))
    # A rule without ports would allow every protocol: the ICMP rule allows nothing instead.
    assert policy["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    ]


def test_the_domain_profile_adds_where_downloads_come_from() -> None:
    policy = network_policy("t", "ns", "uid", rules(DNS), ["10.0.16.5", "10.0.17.0/24"])
    assert policy["spec"]["egress"][0] == {
        "to": [{"ipBlock": {"cidr": "10.0.16.5/32"}}, {"ipBlock": {"cidr": "10.0.17.0/24"}}]
    }
    assert len(policy["spec"]["egress"]) == 3
