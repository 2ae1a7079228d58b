"""DesireTask → the Task object to create (pure: no I/O).

Two kinds of domain (their profiles, `taskop.domain.profiles`):

- **Job-run** (the default): taskop runs the task as a Kubernetes Job, so the TaskDefinition must
  map onto a Task spec without loss (`convert.task_definition_to_spec`); anything it cannot honour
  is an InvalidRequest naming the fields, never silently dropped. What a ``view`` user may not
  read goes into Secrets owned by the Task: image credentials and volume-mounted files
  (`convert.owned_secrets`), and the environment's values (the task's and each run action's:
  ``VCAP_SERVICES``), which the spec takes by ``valueFrom.secretKeyRef`` from the definition
  Secret (`convert.secret_env`). That Secret also keeps the definition as BBS clients are shown it
  (`convert.job_run_definition`), and the Task names it in `DEFINITION_SECRET_ANNOTATION`, as an
  external task does: BBS answers carry the values, the Task and its Job and pod do not.
- **External**: a BBS cell runs the task (StartTask / CompleteTask), so taskop accepts every
  TaskDefinition BBS accepts and keeps it losslessly in a Secret owned by the Task
  (`convert.definition_secret`, created by the service right after the Task); the Task names it
  in the annotation `DEFINITION_SECRET_ANNOTATION` and its spec gets ``external: true`` and a
  readable summary of the mappable fields. The summary leaves out what may carry secrets — a
  ``view`` user reads the Task: image credentials and volume-mounted files (never in the spec
  anyway) and the environment (Cloud Controller puts ``VCAP_SERVICES``, service credentials,
  there) — and fields the spec schema cannot hold; BBS clients get them from the Secret. A spec
  needs an image and a run action: when the definition has no docker rootfs, ``spec.image``
  shows the rootfs as it is; when it has no run action, ``spec.action.run.path`` is
  `EXTERNAL_PATH`. Nothing runs them: no Job is created.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pydantic

from taskop.bbs import models
from taskop.bbs.convert import (
    DEFINITION_SECRET_ANNOTATION,
    SUMMARY_SCALARS,
    definition_secret,
    job_run_definition,
    owned_secrets,
    secret_env,
    task_definition_to_spec,
)
from taskop.bbs.validation import action_kind
from taskop.domain.errors import BBSError
from taskop.domain.jobs import API_LABEL, JobSettings, unsupported
from taskop.domain.names import definition_secret_name, task_name
from taskop.domain.owner import API_VERSION, KIND
from taskop.domain.spec import PreloadedRootfs, SpecError, TaskSpec, parse_spec, rootfs_image

EXTERNAL_PATH = "<run by an external BBS cell>"
"""``spec.action.run.path`` of an external task whose definition has no run action."""


@dataclasses.dataclass(frozen=True)
class Desired:
    """What DesireTask creates: the Task, then its Secrets (no owner yet: the caller makes the
    Task their owner), in this order."""

    task: dict[str, Any]
    secrets: list[dict[str, Any]]


def plan(
    req: models.DesireTaskRequest,
    *,
    external: bool,
    annotations: Mapping[str, str] | None = None,
    job_settings: JobSettings | None = None,
) -> Desired:
    """The Task object (no namespace) for a validated DesireTaskRequest, and its Secrets.

    An external task's definition goes into a Secret (`convert.definition_secret`), owned by the
    Task, which only names it; a Job-run task's secrets and environment values too (module doc).
    Raises InvalidRequest when a Job-run task asks for something taskop cannot honour.
    """
    guid, domain, td = req.task_guid, req.domain, req.task_definition
    name = task_name(guid)
    metadata_annotations = dict(annotations or {})
    if external:
        spec = external_spec(td, guid, domain)
        metadata_annotations[DEFINITION_SECRET_ANNOTATION] = definition_secret_name(name)
        secrets = [definition_secret(td, name)]
    else:
        spec, env = job_spec(td, guid, domain, job_settings or JobSettings(), name)
        secrets = owned_secrets(td, name)
        if env:
            metadata_annotations[DEFINITION_SECRET_ANNOTATION] = definition_secret_name(name)
            secrets.append(definition_secret(job_run_definition(td), name, env))
    metadata: dict[str, Any] = {"name": name, "labels": {API_LABEL: "bbs"}}
    if metadata_annotations:
        metadata["annotations"] = metadata_annotations
    task = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
    return Desired(task, secrets)


def build_task(
    req: models.DesireTaskRequest,
    *,
    external: bool,
    annotations: Mapping[str, str] | None = None,
    job_settings: JobSettings | None = None,
) -> dict[str, Any]:
    """The Task object of `plan`."""
    return plan(req, external=external, annotations=annotations, job_settings=job_settings).task


def job_spec(
    td: models.TaskDefinition, guid: str, domain: str, job_settings: JobSettings, name: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the spec of Job-run task ``name``, its environment values by definition Secret key);
    InvalidRequest naming what taskop cannot honour."""
    spec = task_definition_to_spec(td, guid, domain)
    env = secret_env(spec, definition_secret_name(name))
    try:
        parsed = parse_spec(spec)
    except SpecError as e:
        raise BBSError.invalid_request(_for_bbs(e.messages)) from None
    if problems := unsupported(parsed, job_settings):
        raise BBSError.invalid_request(_for_bbs(problems))
    return spec, env


def _for_bbs(messages: list[str]) -> list[str]:
    return [f"{m} (this domain runs tasks as Kubernetes Jobs)" for m in messages]


def external_spec(td: models.TaskDefinition, guid: str, domain: str) -> dict[str, Any]:
    """A valid Task spec summarising an external task's definition (lossy, and without the
    environment; see module doc)."""
    spec: dict[str, Any] = {"guid": guid, "domain": domain, "external": True}
    try:
        rootfs_image(td.root_fs)
        spec["rootfs"] = td.root_fs
    except PreloadedRootfs:
        spec["rootfs"] = td.root_fs
    except ValueError:
        spec["image"] = td.root_fs
    for wire_name, key in SUMMARY_SCALARS.items():
        value = getattr(td, wire_name)
        if value:
            spec[key] = value
    if td.placement_tags:
        spec["placementTags"] = list(td.placement_tags)
    run = _first_run(td.action) if td.HasField("action") else None
    spec["action"] = {"run": _run_summary(run) if run is not None else {"path": EXTERNAL_PATH}}
    return _drop_invalid(spec)


def _first_run(action: models.Action) -> models.RunAction | None:
    """The first run action in ``action``, depth first."""
    kind = action_kind(action)
    if kind is None:
        return None
    inner = getattr(action, kind)
    if kind == "run_action":
        run: models.RunAction = inner
        return run
    if kind in ("timeout_action", "emit_progress_action", "try_action"):
        return _first_run(inner.action) if inner.HasField("action") else None
    if kind in ("parallel_action", "serial_action", "codependent_action"):
        for child in inner.actions:
            if (found := _first_run(child)) is not None:
                return found
    return None


def _run_summary(run: models.RunAction) -> dict[str, Any]:
    summary: dict[str, Any] = {"path": run.path or EXTERNAL_PATH}
    if run.args:
        summary["args"] = list(run.args)
    if run.dir:
        summary["dir"] = run.dir
    if run.user:
        summary["user"] = run.user
    if run.HasField("resource_limits") and run.resource_limits.HasField("nofile"):
        summary["resourceLimits"] = {"nofile": run.resource_limits.nofile}
    return summary


def _drop_invalid(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` without the fields the schema refuses (they stay in the stored definition)."""
    for _ in range(len(spec) + 1):
        try:
            TaskSpec.model_validate(spec)
            return spec
        except pydantic.ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        if not bad:
            break
        for field in bad:
            if field in ("action", "actionRun"):
                spec["action"] = {"run": {"path": EXTERNAL_PATH}}
            elif field in ("image", "rootfs"):
                spec.pop("rootfs", None)
                spec["image"] = EXTERNAL_PATH
            else:
                spec.pop(field, None)
    raise BBSError.unknown("taskop could not summarise the task definition in a Task spec")
