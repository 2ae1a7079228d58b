"""BBS egress rules (Cloud Controller's security groups) as one NetworkPolicy per Task.

Mapping (cloud-controller-tasks.md §3): the policy selects only the Task's pod, is egress
default-deny, and allows one rule per security-group rule:

- tcp / udp: one ``NetworkPolicyPort`` per port, or ``port`` + ``endPort`` for a port range;
- all: a rule with no ports;
- destinations: a CIDR as it is (normalised to its network), a single IP as /32 or /128, and a
  range ``a-b`` as the minimal set of CIDRs covering exactly it.

ICMP (with its type and code) and ``log: true`` have no NetworkPolicy form (`unenforceable`):
under the domain's ``refuse`` policy the task is refused naming the rule; under ``warn`` an ICMP
rule allows nothing (ICMP stays denied) and a logged rule allows its traffic unlogged.
Enforcement itself is the CNI's. As on Diego, nothing else is
allowed — DNS included (Cloud Controller's default ``dns`` security group allows it).
"""

from __future__ import annotations

from typing import Any

from taskop.domain.addresses import cidrs
from taskop.domain.names import job_name, label_value
from taskop.domain.owner import task_owner
from taskop.domain.spec import EgressRule

MANAGED_BY = {"app.kubernetes.io/managed-by": "taskop"}
TASK_LABEL = "taskop.dev/task"


def unenforceable(rules: list[EgressRule]) -> list[str]:
    """One message per part of ``rules`` a NetworkPolicy cannot express."""
    problems = []
    for i, rule in enumerate(rules):
        where = f"spec.egressRules[{i}]"
        if rule.protocol in ("icmp", "icmpv6"):
            info = rule.icmp_info
            detail = f" type {info.type} code {info.code}" if info is not None else ""
            problems.append(
                f"{where}: {rule.protocol}{detail} has no Kubernetes NetworkPolicy form"
                " (NetworkPolicy allows only TCP, UDP and SCTP)"
            )
        if rule.log:
            problems.append(
                f"{where}: log: true has no Kubernetes NetworkPolicy form (logging is the CNI's)"
            )
    return problems


def _ports(rule: EgressRule) -> list[dict[str, Any]]:
    protocol = rule.protocol.upper()
    if rule.port_range is not None:
        return [
            {"protocol": protocol, "port": rule.port_range.start, "endPort": rule.port_range.end}
        ]
    return [{"protocol": protocol, "port": port} for port in rule.ports]


def network_policy(
    task_name: str,
    namespace: str,
    task_uid: str,
    rules: list[EgressRule],
    allow_to: list[str] | None = None,
) -> dict[str, Any]:
    """The NetworkPolicy of a Task with egress rules: its pod may reach only what they allow,
    and ``allow_to`` (the domain profile's ``allowEgressTo``: where its downloads come from)."""
    egress: list[dict[str, Any]] = []
    if allow_to:
        egress.append({"to": [{"ipBlock": {"cidr": c}} for d in allow_to for c in cidrs(d)]})
    for rule in rules:
        if rule.protocol in ("icmp", "icmpv6"):
            continue  # no form; a rule without ports would allow every protocol
        allowed: dict[str, Any] = {
            "to": [
                {"ipBlock": {"cidr": cidr}}
                for destination in rule.destinations
                for cidr in cidrs(destination)
            ]
        }
        if rule.protocol in ("tcp", "udp"):
            allowed["ports"] = _ports(rule)
        egress.append(allowed)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": job_name(task_name),
            "namespace": namespace,
            "labels": {**MANAGED_BY, TASK_LABEL: label_value(task_name)},
            "ownerReferences": [task_owner(task_name, task_uid)],
        },
        "spec": {
            "podSelector": {"matchLabels": {**MANAGED_BY, TASK_LABEL: label_value(task_name)}},
            "policyTypes": ["Egress"],
            "egress": egress,
        },
    }
