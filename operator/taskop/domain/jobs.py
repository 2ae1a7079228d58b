"""The batch/v1 Job that runs a Task: a pure builder returning a plain manifest dict."""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping
from typing import Any

from taskop.domain.names import guid_label_value, job_name, label_value
from taskop.domain.spec import SpecError, TaskSpec

API_VERSION = "taskop.dev/v1alpha1"
KIND = "Task"
CONTAINER_NAME = "task"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
MANAGED_BY = {"app.kubernetes.io/managed-by": "taskop"}
TASK_LABEL = "taskop.dev/task"
API_LABEL = "taskop.dev/api"
"""``bbs`` on Tasks created through the BBS API: they get BBS's full lifecycle (expiry)."""
GUID_LABEL = "taskop.dev/guid"
GUID_ANNOTATION = "taskop.dev/guid"
PLACEMENT_LABEL_PREFIX = "placement.taskop.dev/"
PASSTHROUGH_PREFIX = "kwok.taskop.dev/"
_UID = re.compile(r"(\d+)(?::(\d+))?")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobSettings:
    """How Task specs map onto pods."""

    cpu_millicores_per_weight: int = 10
    """cpu request = cpuWeight * this (weight 100 → 1 CPU); 0 weight → no cpu request."""
    pod_pids_limit: int | None = None
    """The kubelet's podPidsLimit, when the admin knows it; maxPids ≥ it is then honoured."""
    user_ids: Mapping[str, tuple[int, int | None]] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({"vcap": (2000, 2000)})
    )
    """User names of ``action.run.user`` → (uid, gid); root and numbers need no entry."""


def run_as(user: str, settings: JobSettings) -> tuple[int | None, int | None]:
    """(runAsUser, runAsGroup) for a BBS user: "" → image default; root → 0:0; "1000[:1000]"."""
    if not user:
        return None, None
    if user == "root":
        return 0, 0
    if match := _UID.fullmatch(user):
        gid = match.group(2)
        return int(match.group(1)), None if gid is None else int(gid)
    if user in settings.user_ids:
        return settings.user_ids[user]
    raise SpecError(
        [
            f"spec.action.run.user: {user!r} has no numeric uid on Kubernetes: use root, a uid such"
            f" as 1000 or 1000:1000, or ask the admin to map {user!r} in taskop's user ids"
        ]
    )


def unsupported(spec: TaskSpec, settings: JobSettings) -> list[str]:
    """Messages for the parts of ``spec`` taskop cannot honour with these settings."""
    errors = []
    if spec.max_pids > 0 and (
        settings.pod_pids_limit is None or settings.pod_pids_limit > spec.max_pids
    ):
        errors.append(
            f"spec.maxPids: {spec.max_pids} cannot be enforced for one pod on Kubernetes (only the"
            " kubelet's podPidsLimit limits process ids); set maxPids to 0, or have the admin"
            f" declare a kubelet podPidsLimit of at most {spec.max_pids} in taskop's settings"
        )
    try:
        run_as(spec.action.run.user, settings)
    except SpecError as exc:
        errors.extend(exc.messages)
    return errors


def _escape(value: str) -> str:
    """Keep ``$(VAR)`` literal: the kubelet expands it in command, args and env values."""
    return value.replace("$", "$$")


def _env(spec: TaskSpec) -> list[dict[str, str]]:
    merged: dict[str, str] = {}
    for var in (*spec.env, *spec.action.run.env):
        merged[var.name] = var.value  # later wins, first position kept
    return [{"name": name, "value": _escape(value)} for name, value in merged.items()]


def _resources(spec: TaskSpec, settings: JobSettings) -> dict[str, dict[str, Any]]:
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if spec.memory_mb:
        requests["memory"] = limits["memory"] = f"{spec.memory_mb}Mi"
    if spec.disk_mb:
        limits["ephemeral-storage"] = f"{spec.disk_mb}Mi"
    if spec.cpu_weight and settings.cpu_millicores_per_weight:
        requests["cpu"] = f"{spec.cpu_weight * settings.cpu_millicores_per_weight}m"
    overrides = spec.pod_template.resources if spec.pod_template else None
    if overrides is not None:
        requests.update(overrides.requests)
        limits.update(overrides.limits)
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def _container(spec: TaskSpec, settings: JobSettings) -> dict[str, Any]:
    run = spec.action.run
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.image_reference(),
        "command": [_escape(part) for part in (run.path, *run.args)],
        "terminationMessagePath": spec.result_file or DEFAULT_TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
    }
    if run.dir:
        container["workingDir"] = run.dir
    if env := _env(spec):
        container["env"] = env
    if resources := _resources(spec, settings):
        container["resources"] = resources
    if security := _security_context(spec, settings):
        container["securityContext"] = security
    return container


def _security_context(spec: TaskSpec, settings: JobSettings) -> dict[str, Any]:
    """The task container's securityContext: Pod Security ``restricted`` whenever the task does
    not need root — no privilege escalation, every capability dropped, ``runAsNonRoot``.

    Root (``user: root`` or uid 0) and the image's default user (no ``user``, which may be root)
    keep the container runtime's default capabilities; ``privileged`` is privileged.
    """
    security: dict[str, Any] = {}
    uid, gid = run_as(spec.action.run.user, settings)
    if uid is not None:
        security["runAsUser"] = uid
    if gid is not None:
        security["runAsGroup"] = gid
    if spec.privileged:
        security["privileged"] = True
        return security
    if uid:  # a non-root uid: everything restricted asks for
        security["runAsNonRoot"] = True
        security["allowPrivilegeEscalation"] = False
        security["capabilities"] = {"drop": ["ALL"]}
    return security


def _pod_annotations(spec: TaskSpec, annotations: Mapping[str, str]) -> dict[str, str]:
    result = {k: v for k, v in annotations.items() if k.startswith(PASSTHROUGH_PREFIX)}
    for key, value in (
        ("taskop.dev/log-guid", spec.log_guid),
        ("taskop.dev/log-source", spec.log_source),
        ("taskop.dev/metrics-guid", spec.metrics_guid),
    ):
        if value:
            result[key] = value
    limits = spec.action.run.resource_limits
    if limits is not None and limits.nofile is not None:
        result["taskop.dev/requested-nofile"] = str(limits.nofile)
    return result


def build_job(
    task_name: str,
    namespace: str,
    task_uid: str,
    spec: TaskSpec,
    settings: JobSettings,
    *,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Job running Task ``task_name``; `SpecError` if the spec cannot be honoured.

    ``annotations`` are the Task's: those prefixed ``kwok.taskop.dev/`` go to the pod unchanged.
    """
    if errors := unsupported(spec, settings):
        raise SpecError(errors)
    guid = spec.task_guid(task_name)
    labels = {
        **MANAGED_BY,
        TASK_LABEL: label_value(task_name),
        GUID_LABEL: guid_label_value(guid),
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "containers": [_container(spec, settings)],
    }
    if not spec.privileged:
        pod_spec["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    node_selector = {f"{PLACEMENT_LABEL_PREFIX}{tag}": "true" for tag in spec.placement_tags}
    template = spec.pod_template
    if template is not None:
        node_selector.update(template.node_selector)
        if template.tolerations:
            pod_spec["tolerations"] = [
                t.model_dump(by_alias=True, exclude_defaults=True) for t in template.tolerations
            ]
        if template.service_account_name:
            pod_spec["serviceAccountName"] = template.service_account_name
        if template.image_pull_secrets:
            pod_spec["imagePullSecrets"] = [{"name": s.name} for s in template.image_pull_secrets]
    if "serviceAccountName" not in pod_spec:
        pod_spec["automountServiceAccountToken"] = False
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    template_metadata: dict[str, Any] = {"labels": dict(labels)}
    if pod_annotations := _pod_annotations(spec, annotations or {}):
        template_metadata["annotations"] = pod_annotations
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.retries,
        "completions": 1,
        "parallelism": 1,
        "template": {"metadata": template_metadata, "spec": pod_spec},
    }
    if spec.timeout_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.timeout_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(task_name),
            "namespace": namespace,
            "labels": labels,
            "annotations": {GUID_ANNOTATION: guid},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "name": task_name,
                    "uid": task_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }
