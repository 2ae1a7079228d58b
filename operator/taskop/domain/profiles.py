"""Domain profiles: per BBS domain, how its tasks run (pure: parsing and lookups, no I/O).

A BBS TaskDefinition cannot say where on a cluster it runs, which image a ``preloaded:<stack>``
rootfs is, or what the admin accepts when a field cannot be enforced exactly. The admin says it
once per domain, in the file named by ``TASKOP_DOMAIN_PROFILES_FILE`` (YAML or JSON; the chart's
``domainProfiles`` value), for example::

    domains:
      cf-tasks:
        podTemplate:
          nodeSelector: {pool: cf}
          runtimeClassName: gvisor
        stacks: {cflinuxfs4: registry.example/cflinuxfs4:1.0}
        unenforceable: refuse        # or warn
        podPidsLimit: 1024           # the kubelet podPidsLimit of the nodes it runs on
        trustedCertificates: {configMap: cf-system-certificates}
        allowEgressTo: [10.0.16.0/24]  # the blobstore and file server downloads come from
        callbackClientCertificate: bbs  # (the default) or all, none: see DomainProfile
        unschedulableGracePeriod: 300  # seconds; null: never fail early (see DomainProfile)
      legacy-cells:
        run: external

A domain not listed runs as Jobs with no template, no stacks and the ``refuse`` policy.
``TASKOP_BBS_EXTERNAL_DOMAINS=a,b`` is the short form of ``{run: external}`` for each domain.
The profile of a domain applies to every Task of that domain, created through BBS or kubectl.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Self

import pydantic
from pydantic import Field
from pydantic.alias_generators import to_camel

from taskop.domain.addresses import cidrs
from taskop.domain.spec import LABEL_VALUE_PATTERN, PLACEMENT_TAG_PATTERN, LabelValue, Toleration

BBS_UNSCHEDULABLE_GRACE_PERIOD = 60.0
"""The default `DomainProfile.unschedulable_grace_period` of Tasks the BBS API desired. Diego
answers at once; 60 s rides out what passes by itself — a pod ending elsewhere and freeing room,
a node briefly NotReady, the scheduler's retries after each such change — and still answers a
BBS client (Cloud Controller shows it to the user of ``cf run-task``) in a minute rather than at
the 30-minute pending expiry. A cluster autoscaler needs the time a new node takes to join
(minutes): where one runs, set the domain's ``unschedulableGracePeriod`` to that."""


class Policy(enum.StrEnum):
    """What happens to a field a Job cannot enforce exactly (ICMP and logged egress rules,
    maxPids above the kubelet's limit, trusted certificates with no bundle)."""

    REFUSE = "refuse"  # BBS answers InvalidRequest naming it; a kubectl Task fails InvalidSpec
    WARN = "warn"  # the task runs; each item is recorded (condition Enforced=False, an Event)


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


Name = Annotated[str, Field(min_length=1, max_length=253)]
Destination = Annotated[str, Field(max_length=64)]


class ProfilePodTemplate(_Model):
    """Where a domain's pods run: what a BBS task has no way to say itself."""

    node_selector: Annotated[dict[str, LabelValue], Field(max_length=64)] = {}
    tolerations: Annotated[list[Toleration], Field(max_length=64)] = []
    service_account_name: Name | None = None
    runtime_class_name: Name | None = None
    priority_class_name: Name | None = None


class CertificateBundle(_Model):
    """A ConfigMap or Secret (in the Task's namespace) holding the CA certificates mounted at a
    task's ``trustedSystemCertificatesPath``, as a Diego cell mounts its own."""

    config_map: Name | None = None
    secret: Name | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> Self:
        if (self.config_map is None) == (self.secret is None):
            raise ValueError("name exactly one of configMap and secret")
        return self


class DomainProfile(_Model):
    run: Literal["job", "external", "taskstore"] = "job"
    """job: taskop runs its tasks as Jobs; external: BBS cells do (StartTask/CompleteTask);
    taskstore: workers lease them through the taskstore API (taskop.taskstore), never a Job."""
    pod_template: ProfilePodTemplate = ProfilePodTemplate()
    stacks: Annotated[
        dict[Annotated[str, Field(pattern=PLACEMENT_TAG_PATTERN)], Name], Field(max_length=64)
    ] = {}
    """``preloaded:<stack>`` rootfs → the OCI image its tasks run in."""
    unenforceable: Policy = Policy.REFUSE
    pod_pids_limit: Annotated[int, Field(ge=1)] | None = None
    """The kubelet podPidsLimit of the nodes this domain runs on: maxPids ≥ it is enforced."""
    trusted_certificates: CertificateBundle | None = None
    allow_egress_to: Annotated[
        list[Annotated[str, Field(max_length=64)]], Field(max_length=64)
    ] = []
    """Destinations (IP, CIDR or a-b range) every task with egress rules may also reach: where
    its downloads come from and uploads go (a Diego cell fetches those outside the container,
    so security groups never name them)."""
    callback_client_certificate: Literal["bbs", "all", "none"] = "bbs"
    """Which of the domain's completion callbacks present taskop's client certificate (the one
    Cloud Controller trusts, TASKOP_CALLBACK_TLS_CERT_FILE). bbs: only those of Tasks the BBS API
    desired (recorded in status, which only taskop writes); all: every Task of the domain, kubectl
    ones too. Any Task creator may name any domain, so `all` lends the certificate to everyone
    who may create a Task: only for a cluster where each of them may hold it. none: never."""
    unschedulable_grace_period: Annotated[float, Field(ge=0, le=10**6)] | None = None
    """Seconds a task's pod may stay unschedulable (no node can take it) before the task fails
    with Diego's words: ``found no compatible cell: <the scheduler's message>`` when no node
    matches its placement, ``insufficient resources: memory: <…>`` (cpu, disk, …) when nodes
    match but lack room. Diego's auctioneer fails such a task at once; Kubernetes would keep the
    pod pending, waiting for room or a new node (a cluster autoscaler). Absent:
    `BBS_UNSCHEDULABLE_GRACE_PERIOD` for Tasks the BBS API desired (BBS clients expect Diego's
    answer), never for others (kubectl users expect Kubernetes' waiting, up to the pending
    expiry); a number: for every Task of the domain; null: never. The time counts from the pod's
    ``PodScheduled`` condition (when the scheduler first said no), so a restart keeps it."""

    queue_name: (
        Annotated[str, Field(min_length=1, max_length=63, pattern=LABEL_VALUE_PATTERN)] | None
    ) = None
    """The Kueue LocalQueue of the domain's Tasks that name none themselves (``spec.queueName``):
    how BBS, Glance and taskstore-completed tasks queue. Needs taskop's Kueue support."""
    expire_pending_while_queued: bool = True
    """Whether the pending expiry (BBS: 30 minutes from creation) also fails a task still waiting
    in its Kueue queue (no pod of it released yet). false: a queued task waits as long as Kueue
    keeps it. (Once its pod is released, the expiry is over for it, as for any task whose pod
    may have started.)"""

    @pydantic.field_validator("allow_egress_to")
    @classmethod
    def _destinations(cls, value: list[str]) -> list[str]:
        for destination in value:
            try:
                cidrs(destination)
            except ValueError as e:
                raise ValueError(f"{destination!r}: {e}") from None
        return value

    def unschedulable_grace(self, *, desired_by_bbs: bool) -> float | None:
        """Seconds before a Task whose pod no node can take fails; None: it waits (for the
        pending expiry). ``desired_by_bbs``: the BBS API desired it (``status.api``)."""
        if "unschedulable_grace_period" in self.model_fields_set:
            return self.unschedulable_grace_period
        return BBS_UNSCHEDULABLE_GRACE_PERIOD if desired_by_bbs else None

    @property
    def external(self) -> bool:
        return self.run == "external"

    @property
    def taskstore(self) -> bool:
        return self.run == "taskstore"


JOB_RUN = DomainProfile()
"""The profile of a domain nobody described."""


class DomainProfiles(_Model):
    domains: Annotated[dict[Annotated[str, Field(min_length=1)], DomainProfile], Field()] = {}

    def profile(self, domain: str) -> DomainProfile:
        return self.domains.get(domain, JOB_RUN)

    def external(self, domain: str) -> bool:
        return self.profile(domain).external

    def taskstore_domain(self) -> str | None:
        """The domain whose tasks the taskstore API serves (at most one is marked)."""
        return next((d for d, p in sorted(self.domains.items()) if p.taskstore), None)


class ProfileError(ValueError):
    """The domain profiles cannot be used; the message names the field."""


def parse_profiles(data: Any, external_domains: Iterable[str] = ()) -> DomainProfiles:
    """Validate the profiles file's content and fold in the short form of external domains."""
    try:
        profiles = DomainProfiles.model_validate(data if data is not None else {})
    except pydantic.ValidationError as exc:
        problems = [
            ".".join(str(p) for p in error["loc"]) + ": " + error["msg"] for error in exc.errors()
        ]
        raise ProfileError("; ".join(problems)) from None
    domains: dict[str, DomainProfile] = dict(profiles.domains)
    for domain in external_domains:
        known = domains.get(domain)
        if known is not None and not known.external:
            raise ProfileError(
                f"domains.{domain}: TASKOP_BBS_EXTERNAL_DOMAINS names it external but its profile"
                " says run: job; say it in one place"
            )
        domains[domain] = known or DomainProfile(run="external")
    marked = sorted(d for d, p in domains.items() if p.taskstore)
    if len(marked) > 1:
        raise ProfileError(
            f"domains {', '.join(marked)}: at most one domain is run: taskstore (the taskstore"
            " API serves one set of groups); mark one"
        )
    return DomainProfiles(domains=domains)
