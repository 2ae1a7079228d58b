"""Every setting of taskop, typed and documented, read once at start from the environment.

Each field is read from ``TASKOP_<FIELD NAME IN UPPER CASE>``; durations are in seconds. The
defaults are Diego BBS's own timings (bbs-tasks.md §4), so a BBS client sees the lifecycle it knows.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import yaml

from taskop import __version__
from taskop.domain.callback import DEFAULT_DENIED_DESTINATIONS, DestinationPolicy
from taskop.domain.jobs import JobSettings
from taskop.domain.lifecycle import ConvergenceSettings
from taskop.domain.limits import DEFAULT_MAX_TASK_BYTES
from taskop.domain.profiles import DomainProfiles, ProfileError, parse_profiles


class SettingsError(ValueError):
    """A setting in the environment has a value taskop cannot use."""


@dataclass(frozen=True)
class Settings:
    # --- where taskop works
    namespace: str = field(
        default="", metadata={"doc": "Watch Tasks in this namespace only; empty = all namespaces."}
    )
    bbs_namespace: str = field(
        default="default", metadata={"doc": "Namespace where BBS DesireTask creates its Tasks."}
    )

    # --- BBS lifecycle timings (bbs-tasks.md §4)
    converge_repeat_interval: float = field(
        default=30.0, metadata={"doc": "How often convergence looks at every task."}
    )
    kick_task_duration: float = field(
        default=30.0,
        metadata={
            "doc": "Resolving tasks older than this go back to Completed; callbacks retried."
        },
    )
    expire_pending_task_duration: float = field(
        default=1800.0,
        metadata={"doc": "Pending tasks older than this fail: 'not started within time limit'."},
    )
    expire_completed_task_duration: float = field(
        default=120.0,
        metadata={"doc": "Completed tasks nobody resolved are deleted this long after completion."},
    )
    max_task_retries: int = field(
        default=3, metadata={"doc": "RejectTask count after which a task fails (BBS)."}
    )

    # --- callbacks (bbs-tasks.md §5)
    callback_attempts: int = field(default=3, metadata={"doc": "Tries per callback delivery."})
    callback_timeout: float = field(
        default=10.0, metadata={"doc": "HTTP timeout of one callback attempt."}
    )

    callback_tls_cert_file: str = field(
        default="",
        metadata={
            "doc": "Client certificate (PEM) for https completion callbacks that require mutual"
            " TLS, as Cloud Controller's internal endpoint does; empty: none."
        },
    )
    callback_tls_key_file: str = field(
        default="", metadata={"doc": "Private key of that client certificate."}
    )
    callback_tls_ca_file: str = field(
        default="",
        metadata={"doc": "CA bundle that verifies https callback servers; empty: the system's."},
    )
    callback_workers: int = field(
        default=16,
        metadata={"doc": "Callbacks delivered at once, on their own pool, apart from reconciling."},
    )
    callback_denied_destinations: str = field(
        default=DEFAULT_DENIED_DESTINATIONS,
        metadata={
            "doc": "Comma-separated IP addresses, CIDRs and a-b ranges completion callbacks may not"
            " connect to, unless callback_allowed_destinations allows them. Whoever creates a Task"
            " chooses its callback URL and taskop POSTs to it from its own pod: every address its"
            " host resolves to is checked, and the connection goes to a checked one only (redirects"
            " are not followed). Default: loopback, 0.0.0.0 and ::, link-local and the cloud"
            " metadata services. Empty: none refused."
        },
    )
    callback_allowed_destinations: str = field(
        default="",
        metadata={
            "doc": "Exceptions to callback_denied_destinations, in the same form: e.g. deny"
            " 0.0.0.0/0,::/0 and allow Cloud Controller's network to let callbacks go only there."
        },
    )

    # --- Jobs
    executor_image: str = field(
        default=f"localhost/taskop:{__version__}",
        metadata={
            "doc": "Image holding the in-pod executor (/usr/local/bin/taskop-executor): the"
            " operator's own image. Every task pod copies the executor from it."
        },
    )
    image_pull_grace_period: float = field(
        default=120.0,
        metadata={"doc": "How long a pod may fail to pull its image before the task fails."},
    )
    pod_create_grace_period: float = field(
        default=30.0,
        metadata={
            "doc": "How long the Job controller may fail to create a Task's pod (FailedCreate: "
            "quota, limit range, admission) before the Task fails with the API server's message. "
            "Pod Security refusals fail at once."
        },
    )

    # --- the reconcile core
    peering_lifetime: int = field(
        default=60,
        metadata={
            "doc": "Seconds a replica's kopf peering record counts as alive (with --peering): how"
            " soon a standby takes over from a replica that died without leaving (SIGKILL, a"
            " force-deleted pod). kopf's default; the replicas refresh theirs well within it."
        },
    )
    max_task_bytes: int = field(
        default=DEFAULT_MAX_TASK_BYTES,
        metadata={
            "doc": "Largest Task (spec and annotations, as JSON) the operator holds: a bigger one"
            " is kept as a stub of constant size and fails with a stated reason; the BBS API"
            " refuses to desire one. Bounds what one hostile Task costs the operator's memory;"
            " bound how many with a ResourceQuota on count/tasks.taskop.dev."
        },
    )
    workers: int = field(
        default=32, metadata={"doc": "Reconcile passes in flight at once (one per Task at most)."}
    )
    retry_base_delay: float = field(
        default=0.1,
        metadata={"doc": "First retry delay after a failed pass; doubles per failure, jittered."},
    )
    retry_max_delay: float = field(
        default=300.0, metadata={"doc": "Cap of the per-Task exponential retry delay."}
    )
    resync_period: float = field(
        default=600.0,
        metadata={
            "doc": "Every this many seconds (±10% jitter) taskop re-lists its Tasks, Jobs and pods "
            "and looks at every Task, catching anything a watch missed (0 = never)."
        },
    )
    coalesce_delay: float = field(
        default=0.05,
        metadata={"doc": "Wait this long after a watch event, so a burst of events is one pass."},
    )
    ttl_seconds_after_finished: str = field(
        default="",
        metadata={
            "doc": "Seconds after completion when Tasks without their own"
            " spec.ttlSecondsAfterFinished are deleted with what they own (Tasks of the BBS API"
            " and with a completion callback follow BBS's expiry instead). Empty: kept until"
            " someone deletes them."
        },
    )
    kueue_enabled: bool = field(
        default=False,
        metadata={
            "doc": "Run Tasks that name a Kueue queue (spec.queueName, or their domain profile's"
            " queueName) through Kueue: watch Kueue's Workloads (why a Task waits) and release each"
            " queued Task's pod once (RBAC: pods patch; workloads get, list, watch, patch). Off:"
            " such Tasks fail InvalidSpec, naming this setting."
        },
    )
    events_enabled: bool = field(
        default=True,
        metadata={"doc": "Post Kubernetes Events on Tasks (completion, warnings)."},
    )
    succeeded_events: bool = field(
        default=False,
        metadata={
            "doc": "Also record a Normal Succeeded Event for each Task that succeeds (Warnings,"
            " e.g. Failed, are always recorded). Off by default: a write per Task that nothing"
            " reads; the Task's status says it."
        },
    )

    # --- BBS compatible API
    bbs_enabled: bool = field(default=True, metadata={"doc": "Serve the BBS Tasks API."})
    bbs_listen_address: str = field(default="127.0.0.1", metadata={"doc": "BBS API address."})
    bbs_listen_port: int = field(default=8889, metadata={"doc": "BBS API port."})
    bbs_tls_cert_file: str = field(
        default="", metadata={"doc": "Server certificate (RSA); with key and CA: mutual TLS."}
    )
    bbs_tls_key_file: str = field(default="", metadata={"doc": "Server private key."})
    bbs_tls_ca_file: str = field(
        default="", metadata={"doc": "CA that signs client certificates (required when TLS)."}
    )
    bbs_max_body_bytes: int = field(
        default=1 << 20, metadata={"doc": "Largest request body the BBS API accepts."}
    )
    domain_profiles_file: str = field(
        default="",
        metadata={
            "doc": "YAML or JSON file of domain profiles: per BBS domain, external or Job-run, the"
            " pod template of its tasks, preloaded:<stack> images, podPidsLimit, the CA bundle"
            " for trusted_system_certificates_path and the refuse/warn policy for what a Job"
            " cannot enforce exactly (taskop.domain.profiles). Empty: every domain runs as Jobs"
            " with no template and the refuse policy."
        },
    )
    bbs_external_domains: str = field(
        default="",
        metadata={
            "doc": "Short form of domain profiles with run: external, comma-separated: external"
            " cells run their tasks through StartTask/CompleteTask; taskop keeps the full"
            " TaskDefinition and creates no Job for them."
        },
    )
    bbs_task_annotations: str = field(
        default="",
        metadata={
            "doc": "JSON object of annotations added to every Task that DesireTask creates, e.g. "
            '{"kwok.taskop.dev/complete": "never"} in tests with fake kwok nodes. Empty: none.'
        },
    )

    # --- the Glance v2 Tasks API (taskop.glance): the Tasks of bbs_namespace with a TaskType
    glance_enabled: bool = field(
        default=True,
        metadata={"doc": "Serve the Glance v2 Tasks API (every request needs a Kubernetes token)."},
    )
    glance_listen_address: str = field(default="127.0.0.1", metadata={"doc": "Glance API address."})
    glance_listen_port: int = field(default=9292, metadata={"doc": "Glance API port."})
    glance_tls_cert_file: str = field(
        default="", metadata={"doc": "Glance API server certificate (with its key: HTTPS)."}
    )
    glance_tls_key_file: str = field(default="", metadata={"doc": "Its private key."})
    glance_domain: str = field(
        default="glance", metadata={"doc": "BBS domain of the Tasks the Glance API creates."}
    )
    glance_task_ttl_seconds: int = field(
        default=48 * 3600,
        metadata={
            "doc": "How long a finished Glance task is kept (expires_at = completion + this;"
            " Glance's task_time_to_live): it then answers 404 and its Task is deleted."
        },
    )
    glance_max_body_bytes: int = field(
        default=64 * 1024,
        metadata={"doc": "Largest POST /v2/tasks body (413 above); the input is kept on the Task."},
    )

    # --- the taskstore API (taskop.taskstore): the domain whose profile says run: taskstore
    taskstore_enabled: bool = field(
        default=True,
        metadata={
            "doc": "Serve the taskstore API when a domain profile says run: taskstore (the"
            " protocol has no authentication: keep it on loopback or behind a NetworkPolicy)."
        },
    )
    taskstore_listen_address: str = field(
        default="127.0.0.1", metadata={"doc": "taskstore API address."}
    )
    taskstore_listen_port: int = field(default=8890, metadata={"doc": "taskstore API port."})
    taskstore_max_body_bytes: int = field(
        default=1 << 20,
        metadata={"doc": "Largest /update or /claim body (an update is one ConfigMap: < 1 MiB)."},
    )

    # --- operator process
    health_port: int = field(
        default=8080, metadata={"doc": "kopf liveness endpoint port (0 = disabled)."}
    )
    metrics_listen_address: str = field(
        default="127.0.0.1", metadata={"doc": "Address of the Prometheus /metrics endpoint."}
    )
    metrics_port: int = field(
        default=9102, metadata={"doc": "Port of the Prometheus /metrics endpoint (0 = disabled)."}
    )

    def convergence(self) -> ConvergenceSettings:
        return ConvergenceSettings(
            converge_repeat_interval=self.converge_repeat_interval,
            kick_task_duration=self.kick_task_duration,
            expire_pending_task_duration=self.expire_pending_task_duration,
            expire_completed_task_duration=self.expire_completed_task_duration,
            max_task_retries=self.max_task_retries,
            callback_attempts=self.callback_attempts,
            callback_timeout=self.callback_timeout,
        )

    @property
    def bbs_tls(self) -> bool:
        return bool(self.bbs_tls_cert_file)

    @functools.cached_property
    def profiles(self) -> DomainProfiles:
        """The domain profiles: `domain_profiles_file` plus `bbs_external_domains`."""
        external = [d.strip() for d in self.bbs_external_domains.split(",") if d.strip()]
        data = None
        if self.domain_profiles_file:
            try:
                with open(self.domain_profiles_file, encoding="utf-8") as f:
                    data = yaml.safe_load(f)
            except (OSError, yaml.YAMLError) as e:
                raise SettingsError(
                    f"TASKOP_DOMAIN_PROFILES_FILE={self.domain_profiles_file!r} cannot be read: {e}"
                ) from None
        try:
            return parse_profiles(data, external)
        except ProfileError as e:
            where = self.domain_profiles_file or "TASKOP_BBS_EXTERNAL_DOMAINS"
            raise SettingsError(f"domain profiles ({where}): {e}") from None

    def job_settings(self) -> JobSettings:
        return JobSettings(
            executor_image=self.executor_image, profiles=self.profiles, kueue=self.kueue_enabled
        )

    @property
    def task_annotations(self) -> dict[str, str]:
        """`bbs_task_annotations` parsed (validated by `validate`)."""
        if not self.bbs_task_annotations.strip():
            return {}
        parsed = json.loads(self.bbs_task_annotations)
        return {str(k): str(v) for k, v in parsed.items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            key = f"TASKOP_{f.name.upper()}"
            if key not in env:
                continue
            raw = env[key]
            try:
                if f.type == "bool":
                    if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError("expected true or false")
                    values[f.name] = raw.lower() in ("1", "true", "yes")
                elif f.type == "int":
                    values[f.name] = int(raw)
                elif f.type == "float":
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as e:
                raise SettingsError(f"{key}={raw!r} is not a valid {f.type}: {e}") from None
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and not isinstance(value, bool) and value < 0:
                raise SettingsError(f"TASKOP_{f.name.upper()} must not be negative (got {value})")
        try:
            annotations = json.loads(self.bbs_task_annotations or "{}")
        except ValueError as e:
            annotations = e
        if not isinstance(annotations, dict) or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            raise SettingsError(
                "TASKOP_BBS_TASK_ANNOTATIONS must be a JSON object of strings, e.g. "
                f'{{"kwok.taskop.dev/complete": "never"}} (got {self.bbs_task_annotations!r})'
            )
        self.profiles  # noqa: B018 - read and validated at start, not on the first task
        ttl = self.ttl_seconds_after_finished.strip()
        if ttl and not (ttl.isdigit()):
            raise SettingsError(
                "TASKOP_TTL_SECONDS_AFTER_FINISHED must be a whole number of seconds, or empty to"
                f" keep finished Tasks (got {self.ttl_seconds_after_finished!r})"
            )
        if bool(self.callback_tls_cert_file) != bool(self.callback_tls_key_file):
            raise SettingsError(
                "a callback client certificate needs both TASKOP_CALLBACK_TLS_CERT_FILE and"
                " TASKOP_CALLBACK_TLS_KEY_FILE; set both, or neither"
            )
        try:
            self.callback_policy()
        except ValueError as e:
            raise SettingsError(str(e)) from None
        if bool(self.glance_tls_cert_file) != bool(self.glance_tls_key_file):
            raise SettingsError(
                "HTTPS for the Glance API needs both TASKOP_GLANCE_TLS_CERT_FILE and"
                " TASKOP_GLANCE_TLS_KEY_FILE; set both, or neither for plain HTTP"
            )
        tls = [self.bbs_tls_cert_file, self.bbs_tls_key_file, self.bbs_tls_ca_file]
        if any(tls) and not all(tls):
            raise SettingsError(
                "mutual TLS needs all of TASKOP_BBS_TLS_CERT_FILE, TASKOP_BBS_TLS_KEY_FILE and "
                "TASKOP_BBS_TLS_CA_FILE; set all three, or none for plain HTTP"
            )

    def callback_ssl(self, *, client_certificate: bool) -> ssl.SSLContext:
        """The TLS client context of https callbacks: with taskop's client certificate (when one
        is set) only if ``client_certificate``, i.e. for the callbacks
        `taskop.domain.callback.presents_client_certificate` says."""
        context = ssl.create_default_context(cafile=self.callback_tls_ca_file or None)
        if client_certificate and self.callback_tls_cert_file:
            context.load_cert_chain(self.callback_tls_cert_file, self.callback_tls_key_file)
        return context

    def callback_policy(self) -> DestinationPolicy:
        """Where callbacks may connect (ValueError naming a wrong entry)."""
        return DestinationPolicy.parse(
            self.callback_denied_destinations, self.callback_allowed_destinations
        )

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
