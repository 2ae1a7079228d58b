"""Slim typed records, decoded straight from the API server's JSON.

A Task, Job or pod as the API server sends it carries ``managedFields`` (a tree of every field
each writer set) and, for pods and Jobs, whole specs taskop never reads. Decoded into dicts, that
is most of the CPU of a watch event and most of the garbage a LIST of 100,000 Tasks leaves behind.
These msgspec types name only what taskop reads; msgspec skips the rest of the JSON without
allocating it. `decode_page` and `decode_event` hand back plain dicts (the shape every consumer
already reads), holding only those fields.

What each kind keeps, and who reads it:
- Task: metadata (no managedFields), spec and status whole: the reconciler's cache, the BBS,
  Glance and taskstore views (`taskop.reconciler.cache.slim_task`, `taskop.bbs.convert`).
- Job: metadata, ``spec.activeDeadlineSeconds`` and ``suspend``, status whole (`slim_job`).
- pod: metadata, ``spec.nodeName`` and ``schedulingGates``, status whole (`slim_pod`).
- node: its name and resourceVersion only (a lost cell, `Controller.node_event`).

Any other kind, or JSON these types do not fit, is decoded whole (never an error of its own).
"""

from __future__ import annotations

from typing import Any

import msgspec

Obj = dict[str, Any]


class Meta(msgspec.Struct, omit_defaults=True):
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    generation: int | None = None
    creationTimestamp: str | None = None
    deletionTimestamp: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    ownerReferences: list[Obj] | None = None
    # managedFields: never decoded


class Task(msgspec.Struct, omit_defaults=True):
    apiVersion: str | None = None
    kind: str | None = None
    metadata: Meta | None = None
    spec: Obj | None = None
    status: Obj | None = None


class JobSpec(msgspec.Struct, omit_defaults=True):
    activeDeadlineSeconds: int | None = None
    suspend: bool | None = None


class Job(msgspec.Struct, omit_defaults=True):
    apiVersion: str | None = None
    kind: str | None = None
    metadata: Meta | None = None
    spec: JobSpec | None = None
    status: Obj | None = None


class PodSpec(msgspec.Struct, omit_defaults=True):
    nodeName: str | None = None
    schedulingGates: list[Obj] | None = None


class Pod(msgspec.Struct, omit_defaults=True):
    apiVersion: str | None = None
    kind: str | None = None
    metadata: Meta | None = None
    spec: PodSpec | None = None
    status: Obj | None = None


class NodeMeta(msgspec.Struct, omit_defaults=True):
    name: str | None = None
    resourceVersion: str | None = None


class Node(msgspec.Struct, omit_defaults=True):
    metadata: NodeMeta | None = None


class TaskEvent(msgspec.Struct):
    type: str
    object: Task


class TaskPage(msgspec.Struct):
    metadata: Obj
    items: list[Task] | None = None


class JobEvent(msgspec.Struct):
    type: str
    object: Job


class JobPage(msgspec.Struct):
    metadata: Obj
    items: list[Job] | None = None


class PodEvent(msgspec.Struct):
    type: str
    object: Pod


class PodPage(msgspec.Struct):
    metadata: Obj
    items: list[Pod] | None = None


class NodeEvent(msgspec.Struct):
    type: str
    object: Node


class NodePage(msgspec.Struct):
    metadata: Obj
    items: list[Node] | None = None


_BY_KIND: dict[str, tuple[msgspec.json.Decoder[Any], ...]] = {
    "tasks": tuple(msgspec.json.Decoder(t) for t in (TaskEvent, TaskPage, Task)),
    "jobs": tuple(msgspec.json.Decoder(t) for t in (JobEvent, JobPage, Job)),
    "pods": tuple(msgspec.json.Decoder(t) for t in (PodEvent, PodPage, Pod)),
    "nodes": tuple(msgspec.json.Decoder(t) for t in (NodeEvent, NodePage, Node)),
}
_generic = msgspec.json.Decoder().decode


def decode_event(kind: str, line: bytes) -> Obj:
    """One watch event line: ``{"type": …, "object": …}``."""
    typed = _BY_KIND.get(kind)
    if typed is not None:
        try:
            event = typed[0].decode(line)
        except msgspec.ValidationError:
            pass
        else:
            if event.type not in ("ERROR", "BOOKMARK"):  # a Status, a bare resourceVersion
                return {"type": event.type, "object": msgspec.to_builtins(event.object)}
    decoded: Obj = _generic(line)
    return decoded


def decode_page(kind: str, raw: bytes) -> Obj:
    """One page of a LIST: ``{"metadata": …, "items": […]}``."""
    typed = _BY_KIND.get(kind)
    if typed is not None:
        try:
            page = typed[1].decode(raw)
        except msgspec.ValidationError:
            pass
        else:
            return {"metadata": page.metadata, "items": msgspec.to_builtins(page.items or [])}
    decoded: Obj = _generic(raw)
    return decoded


def decode_object(kind: str, raw: bytes) -> Obj:
    """One object, as a write or a GET answers it."""
    typed = _BY_KIND.get(kind)
    if typed is not None:
        try:
            decoded: Obj = msgspec.to_builtins(typed[2].decode(raw))
            return decoded
        except msgspec.ValidationError:
            pass
    whole: Obj = _generic(raw)
    return whole
