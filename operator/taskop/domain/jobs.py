"""The batch/v1 Job that runs a Task: a pure builder returning a plain manifest dict."""

from __future__ import annotations

import dataclasses
import json
import re
import types
from collections.abc import Mapping
from typing import Any

from taskop.domain.egress import unenforceable
from taskop.domain.names import files_secret_name, guid_label_value, job_name, label_value
from taskop.domain.owner import task_owner
from taskop.domain.profiles import DomainProfile, DomainProfiles, Policy, ProfilePodTemplate
from taskop.domain.queueing import queue_errors, queue_job, queue_of
from taskop.domain.spec import Action, PodTemplate, SpecError, TaskSpec

CONTAINER_NAME = "task"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
EXECUTOR_IN_IMAGE = "/usr/local/bin/taskop-executor"
"""Where the operator image holds the executor (hack/build-image, image/Containerfile)."""
EXECUTOR_DIR = "/taskop/bin"
EXECUTOR = f"{EXECUTOR_DIR}/taskop-executor"
EXECUTOR_SPEC_DIR = "/taskop/spec"
EXECUTOR_SPEC_FILE = "executor.json"
RESULT_DIR = "/taskop/result"
EXECUTOR_SPEC_ANNOTATION = "taskop.dev/executor-spec"
"""The pod's annotation holding what the executor runs (read through the downward API)."""
COPY_CONTAINER_NAME = "executor"
RESULT_CONTAINER_NAME = "result"
"""The sidecar that hands results too large for a termination message to taskop via its log."""
_HELPER_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "16Mi"},
    "limits": {"cpu": "100m", "memory": "32Mi"},
}
_HELPER_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}
MANAGED_BY = {"app.kubernetes.io/managed-by": "taskop"}
TASK_LABEL = "taskop.dev/task"
API_LABEL = "taskop.dev/api"
"""``bbs`` on Tasks created through the BBS API: they get BBS's full lifecycle (expiry)."""
GUID_LABEL = "taskop.dev/guid"
GUID_ANNOTATION = "taskop.dev/guid"
PLACEMENT_LABEL_PREFIX = "placement.taskop.dev/"
SERVICE_BINDINGS_DIR = "/etc/cf-service-bindings"
"""Where a Diego cell mounts a task's volume-mounted files (executor ``initializer``)."""
PASSTHROUGH_PREFIX = "kwok.taskop.dev/"
ACTION_ENV_PREFIX = "TASKOP_ACTION_ENV_"
"""The container variables ``<prefix><n>`` (n in the action tree's order) that carry the values of
run actions' ``valueFrom`` variables: the kubelet fills them in, the executor strips them from the
environment it passes on and gives each value to its own process only (`executor_spec`)."""
Obj = dict[str, Any]
_UID = re.compile(r"(\d+)(?::(\d+))?")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobSettings:
    """How Task specs map onto pods."""

    cpu_millicores_per_weight: int = 10
    """cpu request = cpuWeight * this (weight 100 → 1 CPU); 0 weight → no cpu request."""
    profiles: DomainProfiles = dataclasses.field(default_factory=DomainProfiles)
    """Per domain: pod template, stacks, podPidsLimit, CA bundle and the unenforceable policy."""
    executor_image: str = "localhost/taskop:0.1.0"
    """The image the executor is copied from (the operator's)."""
    user_ids: Mapping[str, tuple[int, int | None]] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({"vcap": (2000, 2000)})
    )
    """User names of ``action.run.user`` → (uid, gid); root and numbers need no entry."""
    kueue: bool = False
    """Tasks with a queue run through Kueue (`taskop.domain.queueing`); off: they are refused."""


def task_user(action: Action, legacy_download_user: str = "") -> tuple[str, str]:
    """(the user the task container runs as, the field that names it); SpecError when the tree
    (or the user of image-layer downloads) asks for two different users: one container runs as
    one user."""
    found: dict[str, str] = {}
    for path, node in action.walk():
        user = getattr(node.inner(), "user", "")
        if user:
            found.setdefault(user, f"{path}.{node.kind()}.user")
    if legacy_download_user and not found.keys() & {"root", "0", "0:0"}:
        # Root downloads for any user (Cloud Controller's Docker tasks run as root with
        # legacy_download_user vcap); the downloaded files are then root's.
        found.setdefault(legacy_download_user, "spec.legacyDownloadUser")
    if len(found) > 1:
        raise SpecError(
            [
                "spec.action: the actions run as different users ("
                + ", ".join(f"{where} is {user!r}" for user, where in found.items())
                + "); a task runs in one container as one user: use the same user everywhere"
            ]
        )
    return next(iter(found.items()), ("", "spec.action.run.user"))


def run_as(
    user: str, settings: JobSettings, where: str = "spec.action.run.user"
) -> tuple[int | None, int | None]:
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
            f"{where}: {user!r} has no numeric uid on Kubernetes: use root, a uid such"
            f" as 1000 or 1000:1000, or ask the admin to map {user!r} in taskop's user ids"
        ]
    )


def unenforced(spec: TaskSpec, profile: DomainProfile) -> list[str]:
    """Messages for the parts of ``spec`` a Job cannot enforce exactly in this domain: refused
    under the profile's ``refuse`` policy, run and recorded under ``warn``."""
    problems = []
    limit = profile.pod_pids_limit
    if spec.max_pids > 0 and (limit is None or limit > spec.max_pids):
        problems.append(
            f"spec.maxPids: {spec.max_pids} cannot be enforced for one pod on Kubernetes (only the"
            " kubelet's podPidsLimit limits process ids); set maxPids to 0, or have the admin"
            f" declare the nodes' podPidsLimit (at most {spec.max_pids}) in the profile of"
            f" domain {spec.domain!r}"
        )
    problems.extend(unenforceable(list(spec.egress_rules)))
    if spec.trusted_system_certificates_path and profile.trusted_certificates is None:
        problems.append(
            "spec.trustedSystemCertificatesPath: the profile of domain"
            f" {spec.domain!r} names no CA bundle to mount there; ask the admin to name a"
            " ConfigMap or Secret in its trustedCertificates"
        )
    return problems


def unsupported(spec: TaskSpec, settings: JobSettings) -> list[str]:
    """Messages for the parts of ``spec`` taskop cannot honour with these settings."""
    profile = settings.profiles.profile(spec.domain)
    errors = [] if profile.unenforceable is Policy.WARN else unenforced(spec, profile)
    errors.extend(
        f"spec.env[{i}].name: {var.name!r}: names starting with {ACTION_ENV_PREFIX} are taskop's"
        " own (they carry the run actions' valueFrom variables)"
        for i, var in enumerate(spec.env)
        if var.name.startswith(ACTION_ENV_PREFIX)
    )
    try:
        spec.image_reference(profile.stacks)
    except SpecError as exc:
        errors.extend(exc.messages)
    try:
        user, where = task_user(spec.action, spec.legacy_download_user)
        run_as(user, settings, where)
    except SpecError as exc:
        errors.extend(exc.messages)
    errors.extend(queue_errors(spec, profile, enabled=settings.kueue))
    return errors


def _escape(value: str) -> str:
    """Keep ``$(VAR)`` literal: the kubelet expands it in command, args and env values."""
    return value.replace("$", "$$")


def _home(spec: TaskSpec, settings: JobSettings) -> str:
    """``/home/<user>`` for a task run as a named user (an entry of ``user_ids``), else ""."""
    user, _ = task_user(spec.action, spec.legacy_download_user)
    return f"/home/{user}" if user in settings.user_ids else ""


def _env(spec: TaskSpec, profile: DomainProfile, home: str = "") -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {"HOME": {"value": home}} if home else {}
    for var in spec.env:  # later wins, first position kept
        if var.value_from is not None:  # Kubernetes fills it in (a Secret's, a ConfigMap's …)
            merged[var.name] = {"valueFrom": var.value_from.model_dump(**_K8S)}
        else:
            merged[var.name] = {"value": _escape(var.value)}
    if spec.trusted_system_certificates_path and profile.trusted_certificates is not None:
        merged["CF_SYSTEM_CERT_PATH"] = {"value": spec.trusted_system_certificates_path}
    return [{"name": name, **source} for name, source in merged.items()]


_K8S: dict[str, Any] = {"by_alias": True, "exclude_defaults": True}
"""How spec parts in Kubernetes' own shape become the pod's: as they are, defaults left out."""


def _action_env(spec: TaskSpec) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the action tree for the executor, the container variables it reads values from).

    A run action's variable with ``valueFrom`` (a Secret's key: a BBS task's VCAP_SERVICES)
    becomes ``{"name": …, "fromEnv": "<ACTION_ENV_PREFIX><n>"}`` in the tree, and the container
    variable ``<ACTION_ENV_PREFIX><n>`` gets the ``valueFrom``: the value never enters the pod's
    annotations (the executor spec is one, readable with ``view``), only the container's
    environment, from which the executor gives it to that process alone."""
    refs: list[dict[str, Any]] = []

    def visit(node: dict[str, Any]) -> None:
        ((kind, inner),) = node.items()
        if kind == "run":
            for var in inner.get("env") or ():
                source = var.pop("valueFrom", None)
                if source is not None:
                    var["fromEnv"] = f"{ACTION_ENV_PREFIX}{len(refs)}"
                    refs.append({"name": var["fromEnv"], "valueFrom": source})
        for child in inner.get("actions") or ([inner["action"]] if "action" in inner else []):
            visit(child)

    action = spec.action.model_dump(by_alias=True, exclude_defaults=True)
    visit(action)
    return action, refs


def executor_spec(spec: TaskSpec) -> dict[str, Any]:
    """What the in-pod executor runs (executor/internal/spec): the action tree as the Task spec
    has it (``valueFrom`` variables by reference, `_action_env`), the downloads before it, the
    log rate limit and where the result goes."""
    out: dict[str, Any] = {"action": _action_env(spec)[0]}
    if spec.downloads:
        out["cachedDependencies"] = [
            d.model_dump(by_alias=True, exclude_defaults=True) for d in spec.downloads
        ]
    if spec.image_layers:
        out["imageLayers"] = [
            layer.model_dump(by_alias=True, exclude_defaults=True) for layer in spec.image_layers
        ]
    if spec.log_rate_limit is not None and spec.log_rate_limit >= 0:
        out["logRateLimit"] = spec.log_rate_limit
    if spec.result_file:
        out["resultFile"] = spec.result_file
        out["resultDir"] = RESULT_DIR
    return out


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


def _container(spec: TaskSpec, settings: JobSettings, profile: DomainProfile) -> dict[str, Any]:
    home = _home(spec, settings)
    mounts = [
        {"name": "taskop-bin", "mountPath": EXECUTOR_DIR, "readOnly": True},
        {"name": "taskop-spec", "mountPath": EXECUTOR_SPEC_DIR, "readOnly": True},
    ]
    if spec.result_file:
        mounts.append({"name": "taskop-result", "mountPath": RESULT_DIR})
    if spec.trusted_system_certificates_path and profile.trusted_certificates is not None:
        mounts.append(
            {
                "name": "taskop-trusted-certs",
                "mountPath": spec.trusted_system_certificates_path,
                "readOnly": True,
            }
        )
    if spec.volume_mounted_files:
        mounts.append({"name": "taskop-files", "mountPath": SERVICE_BINDINGS_DIR, "readOnly": True})
    if home := _home(spec, settings):
        # A Diego rootfs gives a named user (vcap) a writable home where relative download
        # destinations and the run's default directory resolve; any image gets one here.
        mounts.append({"name": "taskop-home", "mountPath": home})
    mounts.extend(m.model_dump(**_K8S) for m in spec.volume_mounts)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.image_reference(profile.stacks),
        **({"workingDir": home} if home else {}),
        "command": [EXECUTOR, "run", f"{EXECUTOR_SPEC_DIR}/{EXECUTOR_SPEC_FILE}"],
        "terminationMessagePath": DEFAULT_TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
        "volumeMounts": mounts,
    }
    if env := [*_env(spec, profile, home), *_action_env(spec)[1]]:
        container["env"] = env
    if spec.env_from:
        container["envFrom"] = [source.model_dump(**_K8S) for source in spec.env_from]
    if resources := _resources(spec, settings):
        container["resources"] = resources
    security = _security_context(spec, settings)
    if spec.pod_template is not None and spec.pod_template.container_security_context:
        security = {**security, **spec.pod_template.container_security_context}
    if security:
        container["securityContext"] = security
    return container


def _security_context(spec: TaskSpec, settings: JobSettings) -> dict[str, Any]:
    """The task container's securityContext: Pod Security ``restricted`` whenever the task does
    not need root — no privilege escalation, every capability dropped, ``runAsNonRoot``.

    Root (``user: root`` or uid 0) and the image's default user (no ``user``, which may be root)
    keep the container runtime's default capabilities; ``privileged`` is privileged.
    """
    security: dict[str, Any] = {}
    user, where = task_user(spec.action, spec.legacy_download_user)
    uid, gid = run_as(user, settings, where)
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
    # BBS fields a pod has no use for, kept where tooling (log and metrics agents) can read them.
    kept: tuple[tuple[str, object], ...] = (
        ("taskop.dev/metric-tags", _dump(spec.metric_tags)),
        ("taskop.dev/network-properties", spec.network_properties),
        ("taskop.dev/certificate-organizational-units", spec.certificate_organizational_units),
    )
    for key, data in kept:
        if data is not None:
            result[key] = json.dumps(data, separators=(",", ":"), sort_keys=True)
    result[EXECUTOR_SPEC_ANNOTATION] = json.dumps(
        executor_spec(spec), separators=(",", ":"), ensure_ascii=False
    )
    return result


def _dump(tags: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if tags is None:
        return None
    return {k: v.model_dump(exclude_defaults=True) for k, v in tags.items()}


def _executor_pod_parts(spec: TaskSpec, settings: JobSettings) -> tuple[list[Obj], list[Obj]]:
    """(init containers, volumes): the executor copied from the operator image into an emptyDir
    the task container runs it from (as Tekton's entrypoint), its spec through the downward API,
    and, with a result file, the sidecar that hands over results too large for a termination
    message."""
    helper = {
        "image": settings.executor_image,
        "imagePullPolicy": "IfNotPresent",
        "resources": _HELPER_RESOURCES,
        "securityContext": _HELPER_SECURITY,
    }
    init: list[Obj] = [
        {
            "name": COPY_CONTAINER_NAME,
            **helper,
            "command": [EXECUTOR_IN_IMAGE, "copy", EXECUTOR],
            "volumeMounts": [{"name": "taskop-bin", "mountPath": EXECUTOR_DIR}],
        }
    ]
    volumes: list[Obj] = [
        {"name": "taskop-bin", "emptyDir": {"sizeLimit": "64Mi"}},
        {
            "name": "taskop-spec",
            "downwardAPI": {
                "items": [
                    {
                        "path": EXECUTOR_SPEC_FILE,
                        "fieldRef": {
                            "fieldPath": f"metadata.annotations['{EXECUTOR_SPEC_ANNOTATION}']"
                        },
                    }
                ]
            },
        },
    ]
    if spec.result_file:
        init.append(
            {
                "name": RESULT_CONTAINER_NAME,
                **helper,
                "restartPolicy": "Always",
                "command": [EXECUTOR_IN_IMAGE, "result-sidecar", RESULT_DIR],
                "volumeMounts": [{"name": "taskop-result", "mountPath": RESULT_DIR}],
            }
        )
        volumes.append({"name": "taskop-result", "emptyDir": {"sizeLimit": "1Mi"}})
    return init, volumes


def _place(
    pod_spec: Obj, node_selector: dict[str, str], template: ProfilePodTemplate | PodTemplate
) -> None:
    """Where the pod runs, from a pod template: the domain profile's, then the Task's own, which
    adds to it and wins on the same keys."""
    node_selector.update(template.node_selector)
    pod_spec.setdefault("tolerations", []).extend(
        t.model_dump(by_alias=True, exclude_defaults=True) for t in template.tolerations
    )
    for key, value in (
        ("serviceAccountName", template.service_account_name),
        ("priorityClassName", template.priority_class_name),
        ("runtimeClassName", template.runtime_class_name),
    ):
        if value is not None:
            pod_spec[key] = value


def files_secret_key(index: int) -> str:
    """Key of the ``index``-th volume-mounted file in the files Secret (paths hold slashes,
    Secret keys may not)."""
    return f"file-{index}"


def _task_volumes(
    task_name: str, spec: TaskSpec, settings: JobSettings, profile: DomainProfile
) -> list[Obj]:
    volumes: list[Obj] = [volume.model_dump(**_K8S) for volume in spec.volumes]
    if _home(spec, settings):
        volumes.append({"name": "taskop-home", "emptyDir": {}})
    bundle = profile.trusted_certificates
    if spec.trusted_system_certificates_path and bundle is not None:
        source: Obj = (
            {"configMap": {"name": bundle.config_map}}
            if bundle.config_map is not None
            else {"secret": {"secretName": bundle.secret}}
        )
        volumes.append({"name": "taskop-trusted-certs", **source})
    if spec.volume_mounted_files:
        items = [
            {"key": files_secret_key(i), "path": f.path.strip("/")}
            for i, f in enumerate(spec.volume_mounted_files)
        ]
        volumes.append(
            {
                "name": "taskop-files",
                "secret": {"secretName": files_secret_name(task_name), "items": items},
            }
        )
    return volumes


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
    profile = settings.profiles.profile(spec.domain)
    guid = spec.task_guid(task_name)
    labels = {
        **MANAGED_BY,
        TASK_LABEL: label_value(task_name),
        GUID_LABEL: guid_label_value(guid),
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "containers": [_container(spec, settings, profile)],
    }
    pod_spec["initContainers"], pod_spec["volumes"] = _executor_pod_parts(spec, settings)
    pod_spec["volumes"].extend(_task_volumes(task_name, spec, settings, profile))
    if not spec.privileged:
        pod_spec["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    node_selector = {f"{PLACEMENT_LABEL_PREFIX}{tag}": "true" for tag in spec.placement_tags}
    _place(pod_spec, node_selector, profile.pod_template)
    template = spec.pod_template
    if template is not None:
        _place(pod_spec, node_selector, template)
        if template.fs_group is not None:
            pod_spec.setdefault("securityContext", {})["fsGroup"] = template.fs_group
        if template.security_context:
            pod_spec["securityContext"] = {
                **pod_spec.get("securityContext", {}),
                **template.security_context,
            }
        if template.affinity:
            pod_spec["affinity"] = template.affinity
        if template.topology_spread_constraints:
            pod_spec["topologySpreadConstraints"] = list(template.topology_spread_constraints)
        if template.image_pull_secrets:
            pod_spec["imagePullSecrets"] = [{"name": s.name} for s in template.image_pull_secrets]
    if not pod_spec["tolerations"]:
        del pod_spec["tolerations"]
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
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(task_name),
            "namespace": namespace,
            "labels": labels,
            "annotations": {GUID_ANNOTATION: guid},
            "ownerReferences": [task_owner(task_name, task_uid)],
        },
        "spec": job_spec,
    }
    if queue := queue_of(spec, profile):
        queue_job(job, queue, spec.priority_class_name)
    return job
