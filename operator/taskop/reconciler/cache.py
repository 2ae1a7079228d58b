"""What the watches said about Tasks, their Jobs and pods: the state a pass reads.

Fed by kopf's watch events (server-side label selectors: only taskop's own Jobs and pods arrive),
by the objects taskop's own writes return, and by the periodic re-list. Each entry is a slim
projection holding only the fields taskop reads, and a Task's entries are forgotten with it.

Invariant kept here: **a pass never acts on a view older than what it has already written.** A
watch event older than the object taskop holds (a lower resourceVersion, e.g. a write of ours whose
event has not arrived yet) never replaces it. resourceVersions are compared as the integers the API
server's storage (etcd revisions) makes them; one that is not an integer always replaces.
"""

from __future__ import annotations

import collections
import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import msgspec

from taskop.domain.limits import (
    DEFAULT_MAX_TASK_BYTES,
    compact_json,
    oversized_stub,
    task_bytes,
)
from taskop.domain.names import job_name

Key = tuple[str, str]  # (namespace, Task name)
Obj = dict[str, Any]

_META = ("name", "namespace", "uid", "resourceVersion", "generation", "deletionTimestamp")
_OWNER = ("kind", "name", "uid")


def rv_of(obj: Mapping[str, Any] | None) -> int | None:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion"))
    except (TypeError, ValueError):
        return None


def _meta(body: Mapping[str, Any], *, labels: bool = False) -> Obj:
    meta = body.get("metadata") or {}
    out: Obj = {k: meta[k] for k in _META if k in meta}
    owners = [{k: o.get(k) for k in _OWNER} for o in meta.get("ownerReferences") or ()]
    if owners:
        out["ownerReferences"] = owners
    if labels:
        for field in ("labels", "annotations", "finalizers"):
            if meta.get(field):
                out[field] = meta[field]
    return out


def slim_task(body: Mapping[str, Any], max_bytes: int = DEFAULT_MAX_TASK_BYTES) -> Obj:
    """The Task as a pass reads it; past ``max_bytes`` of spec and annotations, a stub that
    costs a constant (`taskop.domain.limits`), whatever the object's size."""
    meta = _meta(body, labels=True)
    spec = body.get("spec") or {}
    size = task_bytes(spec, meta.get("annotations"))
    if size > max_bytes:
        spec = oversized_stub(size, max_bytes)
        meta.pop("annotations", None)
    if created := (body.get("metadata") or {}).get("creationTimestamp"):
        meta["creationTimestamp"] = created  # the pending expiry's clock before any status
    return {
        "apiVersion": body.get("apiVersion", "taskop.dev/v1alpha1"),
        "kind": body.get("kind", "Task"),
        "metadata": meta,
        "spec": spec,
        "status": body.get("status") or {},
    }


def slim_job(body: Mapping[str, Any]) -> Obj:
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    meta = _meta(body)
    if finalizers := (body.get("metadata") or {}).get("finalizers"):
        meta["finalizers"] = list(finalizers)
    out: Obj = {
        "metadata": meta,
        "status": (
            {
                "conditions": status.get("conditions") or [],
                # pods the Job controller counted as ended: one ran (the pending expiry's check),
                # and those it is counting: their finalizer may be gone (the pod with it) before
                # they are in ``failed`` or ``succeeded``
                **{
                    k: status[k]
                    for k in ("succeeded", "failed", "uncountedTerminatedPods")
                    if status.get(k)
                },
            }
            if status
            else {}
        ),
    }
    if kept := {k: spec[k] for k in ("activeDeadlineSeconds", "suspend") if spec.get(k)}:
        out["spec"] = kept  # suspend: Kueue's (a queued Task's Job waits, or was evicted)
    return out


def slim_pod(body: Mapping[str, Any]) -> Obj:
    status = body.get("status") or {}
    meta = _meta(body)
    if ts := (body.get("metadata") or {}).get("creationTimestamp"):
        meta["creationTimestamp"] = ts
    kept = {  # nominatedNodeName: preemption makes room for it (no unschedulable failure)
        k: status[k] for k in ("phase", "reason", "message", "nominatedNodeName") if k in status
    }
    if conditions := [
        c
        for c in status.get("conditions") or ()
        if c.get("type") in ("DisruptionTarget", "PodScheduled")
    ]:
        kept["conditions"] = conditions
    if containers := status.get("containerStatuses"):
        kept["containerStatuses"] = [
            {k: c[k] for k in ("name", "state", "lastState") if k in c} for c in containers
        ]
    out: Obj = {"metadata": meta, "status": kept}
    pod_spec = body.get("spec") or {}
    if node := pod_spec.get("nodeName"):
        out["spec"] = {"nodeName": node}
    if gates := pod_spec.get("schedulingGates"):  # a queued Task's pod waits for its release
        out.setdefault("spec", {})["schedulingGates"] = [{"name": g.get("name")} for g in gates]
    return out


class Entry(NamedTuple):
    """One cached object: what comparisons need, and the slim projection, encoded.

    Stored encoded, not as dicts: a decoded dict of ~1 KB of JSON costs several KB of Python
    objects, and 10,000 held Tasks must cost little (decoding on read is microseconds).
    """

    uid: str
    rv: int | None
    data: bytes
    """The projection without its resourceVersion (kept in ``rv``): two versions of an object
    whose projections are equal have equal ``data`` (see `Cache.put_task`)."""

    def obj(self) -> Obj:
        decoded: Obj = _decode(self.data)
        if self.rv is not None:
            decoded["metadata"]["resourceVersion"] = str(self.rv)
        return decoded


def _entry(slim: Obj) -> Entry:
    meta = slim["metadata"]
    rv = rv_of(slim)
    if rv is not None:
        meta.pop("resourceVersion", None)
    return Entry(
        str(meta.get("uid") or ""),
        rv,
        _encode(slim),
    )


_msgpack = msgspec.msgpack.Decoder().decode
_encoder = msgspec.msgpack.Encoder()


def _encode(slim: Obj) -> bytes:
    """MessagePack: a sixth smaller than compact JSON, and several times faster to make than
    ``json.dumps``. A string no UTF-8 can hold (a lone surrogate, which no API server sends) is
    kept as ``json`` escapes it (JSON starts with ``{``, which no MessagePack map does)."""
    try:
        return _encoder.encode(slim)
    except UnicodeEncodeError:
        return compact_json(slim)


def _decode(data: bytes) -> Obj:
    decoded: Obj = json.loads(data) if data[:1] == b"{" else _msgpack(data)
    return decoded


def _news(new: Entry, held: Entry | None) -> bool:
    """Whether keeping ``new`` over ``held`` tells a pass anything: no for an echo of taskop's
    own write (kept at once from the write's answer), or a change to fields it does not keep."""
    return held is None or new.uid != held.uid or new.data != held.data


def _replaces(new: Mapping[str, Any], held: Entry | None) -> bool:
    """Whether ``new`` may replace ``held``: not older; and another object of the same name (a
    Task created again, its new Job) only when newer, since one name holds one object at a time:
    an event of the earlier one that arrives after the later one is stale (a pass would see the
    earlier Task's Job as the Task's, and fail it as not its own)."""
    if held is None:
        return True
    rv = rv_of(new)
    if rv is None or held.rv is None:
        return True
    if (new.get("metadata") or {}).get("uid") != held.uid:
        return rv > held.rv
    return rv >= held.rv


class Cache:
    def __init__(self, max_task_bytes: int = DEFAULT_MAX_TASK_BYTES) -> None:
        self.max_task_bytes = max_task_bytes
        self.tasks: dict[Key, Entry] = {}
        self.states: collections.Counter[str] = collections.Counter()  # Tasks by status.state
        self._state: dict[Key, str] = {}
        self.jobs: dict[Key, Entry] = {}  # by the Task whose deterministic Job name it has
        self.pods: dict[Key, dict[str, Entry]] = {}
        self.create_failures: dict[Key, tuple[int, str]] = {}
        self.create_unavailable: dict[Key, int] = {}  # first seen: a webhook could not be called
        self.workloads: dict[tuple[str, str], Obj] = {}  # (namespace, Job name) → Kueue Workload
        self.obituaries: dict[Key, dict[str, str]] = {}  # pod uid → what it was when it went
        self.nodes: dict[str, int | None] = {}  # name → resourceVersion: the cells there are
        self.lost_cells: set[str] = set()  # nodes seen deleted (and not created again)
        self._job_keys: dict[tuple[str, str], Key] = {}  # (namespace, Job name) → Task key

    # --- Tasks
    def task(self, key: Key) -> Obj | None:
        held = self.tasks.get(key)
        return held.obj() if held else None

    def put_task(self, body: Mapping[str, Any]) -> bool:
        """Keep ``body`` unless the cache holds a newer version; True when kept and its
        projection changed (news for a pass)."""
        meta = body.get("metadata") or {}
        key = (sys.intern(str(meta.get("namespace"))), str(meta.get("name")))
        held = self.tasks.get(key)
        if not _replaces(body, held):
            return False
        self.tasks[key] = entry = _entry(slim_task(body, self.max_task_bytes))
        self._count(key, sys.intern(str((body.get("status") or {}).get("state") or "Pending")))
        return _news(entry, held)

    def _count(self, key: Key, state: str | None) -> None:
        """Keep `states` as the cache changes: a scrape never decodes the cache."""
        if (was := self._state.pop(key, None)) is not None:
            self.states[was] -= 1
        if state is not None:
            self._state[key] = state
            self.states[state] += 1

    def drop_task(self, key: Key, uid: str | None = None) -> None:
        held = self.tasks.get(key)
        if held is not None and (uid is None or held.uid == uid):
            del self.tasks[key]
            self._count(key, None)

    # --- Jobs, by the Task they are named after
    def job(self, key: Key) -> Obj | None:
        held = self.jobs.get(key)
        return held.obj() if held else None

    def put_job(self, key: Key, body: Mapping[str, Any]) -> bool:
        """Like `put_task`: True when kept and its projection changed."""
        held = self.jobs.get(key)
        if not _replaces(body, held):
            return False
        self.jobs[key] = entry = _entry(slim_job(body))
        name = str((body.get("metadata") or {}).get("name"))
        self._job_keys[(key[0], name)] = key
        return _news(entry, held)

    def drop_job(self, key: Key, uid: str | None = None) -> None:
        held = self.jobs.get(key)
        if held is not None and (uid is None or held.uid == uid):
            del self.jobs[key]
            self._job_keys.pop((key[0], str(held.obj()["metadata"].get("name"))), None)
            self.create_failures.pop(key, None)

    def key_of_job(self, namespace: str, job_name: str) -> Key | None:
        return self._job_keys.get((namespace, job_name))

    # --- pods, by the Task of their Job
    def pods_of(self, key: Key) -> list[Obj]:
        return [held.obj() for held in self.pods.get(key, {}).values()]

    def put_pod(self, key: Key, body: Mapping[str, Any]) -> bool:
        """Like `put_task`: True when kept and its projection changed."""
        name = str((body.get("metadata") or {}).get("name"))
        pods = self.pods.setdefault(key, {})
        held = pods.get(name)
        if not _replaces(body, held):
            return False
        pods[name] = entry = _entry(slim_pod(body))
        return _news(entry, held)

    def drop_pod(self, key: Key, name: str) -> None:
        pods = self.pods.get(key)
        if pods is not None:
            pods.pop(name, None)
            if not pods:
                del self.pods[key]

    def replace_pods(self, key: Key, bodies: Iterable[Mapping[str, Any]]) -> None:
        """The pods just listed from the API server are all there is."""
        self.pods.pop(key, None)
        for body in bodies:
            self.put_pod(key, body)
        if not self.pods.get(key):
            self.pods.pop(key, None)

    def forget(self, key: Key) -> None:
        """The Task is gone: nothing about it is kept."""
        self.tasks.pop(key, None)
        self._count(key, None)
        self.drop_job(key)
        self.pods.pop(key, None)
        self.create_failures.pop(key, None)
        self._drop_queueing(key)

    def _drop_queueing(self, key: Key) -> None:
        self.create_unavailable.pop(key, None)
        self.obituaries.pop(key, None)
        self.workloads.pop((key[0], job_name(key[1])), None)

    def state(self, key: Key) -> str | None:
        """The held Task's status.state ("Pending" when none yet), without decoding it."""
        return self._state.get(key)

    def drop_children(self, key: Key) -> None:
        """The Task is finished and its Job done with (finished, released): a pass needs
        neither, so they are not held (an event of them brings them back until they go)."""
        self.drop_job(key)
        self.pods.pop(key, None)
        self._drop_queueing(key)

    def keys(self) -> set[Key]:
        return set(self.tasks) | set(self.jobs) | set(self.pods)

    def __len__(self) -> int:
        return len(self.tasks) + len(self.jobs) + sum(len(p) for p in self.pods.values())
