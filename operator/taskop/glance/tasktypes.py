"""TaskTypes (``kubectl get tasktypes``): what a Glance task of each type runs, and the Task (and
input Secret) a ``POST /v2/tasks`` makes from one. Pure: no Kubernetes, no HTTP.

Why a CRD, not the domain profiles: task types are the admin's API surface, edited often and
live, with RBAC of their own (who may define what runs), ``kubectl explain`` and schema errors
that name the field at ``kubectl apply``. Domain profiles are operator start-up configuration.
A Glance task still gets its domain's profile (``TASKOP_GLANCE_DOMAIN``) like any Task.

The input is kept in one place only: the Secret ``<task>-input`` (made with the Task, owned by
it, immutable, key `INPUT_KEY`, label `INPUT_SECRET_LABEL`), made for every Glance task. It
reaches the container as the TaskType says: ``input.path`` is a read-only file mounted from that
Secret, ``input.env`` an environment variable Kubernetes fills in from it
(``valueFrom.secretKeyRef``). Never on the Task (annotation, spec, env literal) nor in the Job:
the cluster's ``view`` role reads those, and an input may carry credentials. GET /v2/tasks/{id}
answers it from a watch of those Secrets (`secret_input`).
"""

from __future__ import annotations

import base64
import json
import posixpath
from typing import Any

import pydantic
from pydantic.alias_generators import to_camel

from taskop.domain.jobs import API_LABEL
from taskop.domain.names import safe_name, task_name
from taskop.domain.owner import API_VERSION, KIND
from taskop.domain.spec import SpecError, TaskEnvVar, parse_spec
from taskop.glance.model import OWNER_ANNOTATION, TYPE_LABEL

INPUT_KEY = "input.json"
INPUT_VOLUME = "glance-input"
INPUT_SECRET_LABEL = "taskop.dev/glance-input"
INPUT_SECRET_SELECTOR = f"{INPUT_SECRET_LABEL}=true"

Obj = dict[str, Any]


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )


class InputDelivery(_Model):
    path: str = ""
    env: str = ""


class TaskTypeSpec(_Model):
    image: str
    command: list[str] = pydantic.Field(min_length=1)
    env: list[TaskEnvVar] = []
    input: InputDelivery = InputDelivery()
    result_file: str | None = None
    timeout_seconds: int | None = None
    pod_template: dict[str, Any] | None = None


class TaskTypeError(ValueError):
    """A TaskType taskop cannot make Tasks from (the admin's to fix)."""


def parse_task_type(obj: Obj) -> TaskTypeSpec:
    try:
        return TaskTypeSpec.model_validate(obj.get("spec") or {})
    except pydantic.ValidationError as e:
        raise TaskTypeError(str(e)) from None


def input_secret_name(task: str) -> str:
    return safe_name(f"{task}-input")


def input_secret(name: str, input_json: str) -> Obj:
    """The input Secret of the Task ``name`` (no owner yet)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": input_secret_name(name), "labels": {INPUT_SECRET_LABEL: "true"}},
        "immutable": True,
        "data": {INPUT_KEY: base64.standard_b64encode(input_json.encode()).decode("ascii")},
    }


def secret_input(secret: Obj) -> tuple[str, Obj] | None:
    """(uid of the Task, its input) when ``secret`` is a Task's input Secret: named after the
    Task that owns it, holding a JSON object. None otherwise — a Secret that merely carries the
    label is no Task's input."""
    meta = secret.get("metadata") or {}
    for owner in meta.get("ownerReferences") or ():
        if owner.get("kind") != KIND or not owner.get("uid") or not owner.get("name"):
            continue
        if meta.get("name") != input_secret_name(str(owner["name"])):
            continue
        try:
            data = base64.standard_b64decode((secret.get("data") or {}).get(INPUT_KEY) or "")
            parsed = json.loads(data)
        except ValueError:
            return None
        return (str(owner["uid"]), parsed) if isinstance(parsed, dict) else None
    return None


def build(
    type_name: str,
    task_type: TaskTypeSpec,
    *,
    task_id: str,
    input_: Obj,
    owner: str,
    domain: str,
    ttl_seconds: int,
    annotations: dict[str, str] | None = None,
) -> tuple[Obj, Obj]:
    """The Task (no namespace) and its input Secret (no owner yet). TaskTypeError when the
    result is not a valid Task (the TaskType is wrong)."""
    name = task_name(task_id)
    input_json = json.dumps(input_, separators=(",", ":"), ensure_ascii=False)
    secret = input_secret(name, input_json)
    secret_name = secret["metadata"]["name"]
    env = [e.model_dump(by_alias=True, exclude_defaults=True) for e in task_type.env]
    if task_type.input.env:
        from_secret = {"secretKeyRef": {"name": secret_name, "key": INPUT_KEY}}
        env.append({"name": task_type.input.env, "valueFrom": from_secret})
    spec: Obj = {
        "guid": task_id,
        "domain": domain,
        "image": task_type.image,
        "action": {"run": {"path": task_type.command[0], "args": task_type.command[1:]}},
        "ttlSecondsAfterFinished": ttl_seconds,
    }
    if env:
        spec["env"] = env
    if task_type.result_file:
        spec["resultFile"] = task_type.result_file
    if task_type.timeout_seconds:
        spec["timeoutSeconds"] = task_type.timeout_seconds
    if task_type.pod_template:
        spec["podTemplate"] = task_type.pod_template
    if task_type.input.path:
        spec["volumes"] = [{"name": INPUT_VOLUME, "secret": {"secretName": secret_name}}]
        spec["volumeMounts"] = [
            {
                "name": INPUT_VOLUME,
                "mountPath": posixpath.normpath(task_type.input.path),
                "subPath": INPUT_KEY,
                "readOnly": True,
            }
        ]
    try:
        parse_spec(spec)
    except SpecError as e:
        raise TaskTypeError("; ".join(e.messages)) from None
    metadata: Obj = {
        "name": name,
        "labels": {API_LABEL: "glance", TYPE_LABEL: type_name},
        "annotations": {**(annotations or {}), OWNER_ANNOTATION: owner},
    }
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}, secret
