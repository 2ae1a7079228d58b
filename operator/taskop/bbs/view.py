"""The in-memory view of the Tasks the BBS API serves reads from, and the source of its events.

`TaskView` is pure state: a watch loop (`taskop.bbs.watch`) feeds it the API server's LIST and
WATCH results (`replace_all`, `apply`), and the write path feeds it each write's response
(`observe`) so that a client reads its own writes at once. An object is taken only when its
resourceVersion is newer than the one held. Objects with a ``deletionTimestamp`` count as gone.

Events come from the watch only, comparing each object's BBS-visible `models.Task` with the one
last published for it: a Task appears in the streams (``task_created``) once its status is
initialised (``status.state`` set), ``task_changed`` is sent only when the BBS Task differs (not
for conditions, finalizers or ``spec.cancelled``), and ``task_removed`` once, when the object
starts being deleted or disappears.

An external task's TaskDefinition is not in its Task (a ``view`` user reads Tasks) but in a Secret
owned by it (`convert.definition_secret`); so is a Job-run task's when it has environment values,
which its spec only references. A second watch, of the Secrets labelled
`convert.DEFINITION_SECRET_LABEL` (`definition_feed`), feeds them in by their owner's uid, so no
read costs a GET. The Task is created before its Secret (the Secret needs the Task's uid for its
owner reference), and the two watches are not ordered, so a Task naming a Secret the view has not
seen yet is held back: left out of reads and events until its Secret arrives (``task_created``
then). Once a Task is held with its definition, the definition is immutable: later versions of the
Task reuse it, and the Secret's bytes are not kept twice. A Task whose Secret never comes (the
desire failed half-way and its clean-up too) stays out of BBS answers; the reconciler expires it
as any Pending task.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from taskop.bbs import events, models
from taskop.bbs.convert import (
    definition_bytes,
    definition_secret_of,
    parse_definition,
    resource_to_task,
)
from taskop.bbs.downgrade import downgrade_v2
from taskop.bbs.hub import EventHub, TaskEvent
from taskop.domain.limits import DEFAULT_MAX_TASK_BYTES, compact_json, task_bytes
from taskop.domain.names import definition_secret_name
from taskop.kube.watch import replace_paged

log = logging.getLogger("taskop.bbs")

Obj = dict[str, Any]
MAX_TOMBSTONES = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One Task of the view, kept encoded: 10,000 held Tasks must cost little memory.

    ``raw`` is the Task object without ``managedFields`` as compact JSON (empty when the
    reconciler's cache holds the object: `TaskView.obj_of`); ``task_bytes`` its BBS
    ``models.Task``, serialized deterministically. Both decode in microseconds when read.
    """

    name: str
    uid: str
    resource_version: str
    guid: str
    domain: str
    cell_id: str
    external: bool
    raw: bytes
    task_bytes: bytes

    @property
    def obj(self) -> Obj:
        decoded: Obj = _decode_json(self.raw)
        return decoded

    @property
    def task(self) -> models.Task:
        """A fresh copy: callers may change it."""
        task = models.Task()
        task.ParseFromString(self.task_bytes)
        return task

    # A Tasks list is these bytes joined: each task was encoded once, when it was stored.
    @property
    def wire_v3(self) -> bytes:
        """This task as a ``TasksResponse.tasks`` (field 2) element on the wire."""
        return _tasks_field(self.task_bytes)

    @property
    def wire_v2(self) -> bytes:
        """Likewise, downgraded for the deprecated ``.r2`` routes."""
        return _tasks_field(downgrade_v2(self.task).SerializeToString())


def _encode(task: models.Task) -> bytes:
    encoded: bytes = task.SerializeToString(deterministic=True)
    return encoded


_decode_json = msgspec.json.Decoder().decode


def _slim(obj: Obj) -> bytes:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return compact_json({**obj, "metadata": meta})


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _tasks_field(task: bytes) -> bytes:
    return b"\x12" + _varint(len(task)) + task  # field 2, wire type 2 (length-delimited)


def _rv(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _newer(candidate: str | None, held: str | None) -> bool:
    """Whether resourceVersion ``candidate`` is newer than ``held`` (unknown order: assume so)."""
    new, old = _rv(candidate), _rv(held)
    if new is None or old is None:
        return candidate != held
    return new > old


def _deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _initialised(obj: Obj) -> bool:
    return bool((obj.get("status") or {}).get("state"))


def _decode(data: bytes) -> models.Task:
    task = models.Task()
    task.ParseFromString(data)
    return task


def guid_of(obj: Obj) -> str:
    return str((obj.get("spec") or {}).get("guid") or obj["metadata"]["name"])


def _task_owner(secret: Obj) -> tuple[str, str] | None:
    """(name, uid) of the Task owning ``secret``; None when no Task owns it."""
    for ref in (secret.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == "Task" and ref.get("uid") and ref.get("name"):
            return str(ref["name"]), str(ref["uid"])
    return None


class DefinitionFeed:
    """What the Secret watch feeds (`keep_current`'s View): definition Secrets into a TaskView."""

    def __init__(self, view: TaskView, *, ready: bool) -> None:
        self._view = view
        self.ready = ready

    def replace_all(self, items: list[Obj]) -> None:
        self._view._replace_definitions(items)
        self.ready = True

    def apply(self, type_: str, obj: Obj) -> None:
        self._view._apply_definition(type_, obj)


class TaskView:
    def __init__(
        self,
        hub: EventHub | None = None,
        *,
        watch_definitions: bool = False,
        max_task_bytes: int = DEFAULT_MAX_TASK_BYTES,
        store: Callable[[str], Obj | None] | None = None,
    ) -> None:
        """``store``: the Task of a name as the reconciler's cache holds it (same process, same
        feed): the view then keeps no copy of the object, only its BBS Task (`obj_of`)."""
        self.max_task_bytes = max_task_bytes
        self._store_of = store
        """``watch_definitions``: a watch of the definition Secrets feeds `definition_feed`, and
        the view is not ready until it has listed them (else only `observe_definition` feeds
        them: tests)."""
        self.hub = hub
        self._entries: dict[str, Entry] = {}  # by metadata.name
        self._by_guid: dict[str, str] = {}  # guid → name
        self._tombstones: collections.OrderedDict[str, tuple[str, str]] = (
            collections.OrderedDict()
        )  # name → (uid, resourceVersion) of objects known to be gone
        self._published: dict[str, bytes] = {}  # name → last BBS Task sent in events (encoded)
        # Task uid → its TaskDefinition's bytes, from Secrets whose Task is not held yet.
        self._definitions: dict[str, bytes] = {}
        # name → (Task, whether the watch delivered it): Tasks held back until their Secret comes.
        self._waiting: dict[str, tuple[Obj, bool]] = {}
        self._listed = False
        self.definition_feed = DefinitionFeed(self, ready=not watch_definitions)

    @property
    def ready(self) -> bool:
        """Whether reads may be served: both watches have listed and are current."""
        return self._listed and self.definition_feed.ready

    @ready.setter
    def ready(self, value: bool) -> None:  # the Task watch's (`keep_current`)
        self._listed = value

    # --- reads
    def obj_of(self, entry: Entry) -> Obj | None:
        """The Task object of ``entry``, at its resourceVersion or newer; None when only the API
        server has it (the reconciler's cache has not seen a write of the door's own yet)."""
        if entry.raw:
            return entry.obj
        obj = self._store_of(entry.name) if self._store_of is not None else None
        if obj is None or obj["metadata"].get("uid") != entry.uid:
            return None
        if _newer(entry.resource_version, obj["metadata"].get("resourceVersion")):
            return None
        return obj

    def get(self, guid: str) -> Entry | None:
        name = self._by_guid.get(guid)
        return self._entries.get(name) if name is not None else None

    def get_by_name(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def tasks(self, domain: str = "", cell_id: str = "") -> list[models.Task]:
        """Tasks matching both filters (an empty filter matches everything)."""
        return [
            e.task
            for e in self._entries.values()
            if (not domain or e.domain == domain) and (not cell_id or e.cell_id == cell_id)
        ]

    def tasks_wire(self, domain: str = "", cell_id: str = "", *, v2: bool = False) -> bytes:
        """The encoded ``TasksResponse`` of `tasks` (no error): the same bytes, made cheaply."""
        return b"".join(
            e.wire_v2 if v2 else e.wire_v3
            for e in self._entries.values()
            if (not domain or e.domain == domain) and (not cell_id or e.cell_id == cell_id)
        )

    def __len__(self) -> int:
        return len(self._entries)

    # --- writes
    def observe(self, obj: Obj) -> None:
        """A write's response: take it when newer than what the view holds (read-your-writes)."""
        self._store(obj, watched=False)

    def observe_definition(self, secret: Obj) -> None:
        """A definition Secret just created (read-your-writes, before its watch event)."""
        self._apply_definition("ADDED", secret)

    def forget(self, name: str, uid: str, resource_version: str) -> None:
        """The object was deleted by us: gone from reads now, whatever the watch still says."""
        self._remove(name, uid, resource_version)

    def apply(self, type_: str, obj: Obj) -> None:
        """One watch event (ADDED, MODIFIED, DELETED)."""
        gone = type_ == "DELETED" or _deleting(obj)
        if gone:
            meta = obj["metadata"]
            name = meta["name"]
            self._remove(name, meta.get("uid", ""), meta.get("resourceVersion", ""))
            before = self._published.pop(name, None)
            if before is not None:
                removed = self._convert(obj) or _decode(before)
                self._publish(TaskEvent(events.TASK_REMOVED, removed))
            return
        task = self._store(obj, watched=True)
        self._diff(obj, task)

    def replace_all(self, items: list[Obj]) -> None:
        """A fresh LIST: the view becomes exactly ``items``; events for what changed meanwhile."""
        replace_paged(self, items)

    def list_item(self, item: Obj) -> None:
        """One object of a LIST being read page by page (`taskop.kube.feed`)."""
        self.apply("MODIFIED", item)

    def list_end(self, names: set[str]) -> None:
        """The LIST's ``names`` are all there is: the rest is gone."""
        for name in list(self._entries):
            if name not in names:
                entry = self._entries[name]
                self._remove(name, entry.uid, entry.resource_version)
        for name in list(self._waiting):
            if name not in names:
                del self._waiting[name]
        for name in list(self._published):
            if name not in names:
                before = self._published.pop(name)
                self._publish(TaskEvent(events.TASK_REMOVED, _decode(before)))
        self.ready = True

    # --- definition Secrets (`DefinitionFeed`)
    def _replace_definitions(self, items: list[Obj]) -> None:
        self._definitions = {}
        for secret in items:
            self._apply_definition("ADDED", secret)

    def _apply_definition(self, type_: str, secret: Obj) -> None:
        owner = _task_owner(secret)
        if owner is None:
            return
        name, uid = owner
        if (secret.get("metadata") or {}).get("name") != definition_secret_name(name):
            return  # not the one the door made for that Task
        if type_ == "DELETED":
            self._definitions.pop(uid, None)
            return
        held = self._entries.get(name)
        if held is not None and held.uid == uid:
            return  # the Task is held with its definition already (immutable)
        data = definition_bytes(secret)
        if data is None or parse_definition(data) is None:
            log.warning(
                "a definition Secret holds no readable task definition; its task stays out of"
                " BBS answers",
                extra={"task": name, "secret": (secret.get("metadata") or {}).get("name")},
            )
            return
        self._definitions[uid] = data
        waiting = self._waiting.get(name)
        if waiting is not None and waiting[0]["metadata"].get("uid") == uid:
            del self._waiting[name]
            obj, watched = waiting
            task = self._store(obj, watched=watched)
            if watched:
                self._diff(obj, task)

    def _definition(self, obj: Obj) -> models.TaskDefinition | None:
        """The TaskDefinition of a Task whose definition is in a Secret; None until it is seen."""
        meta = obj["metadata"]
        data = self._definitions.get(meta.get("uid", ""))
        if data is not None:
            return parse_definition(data)
        held = self._entries.get(meta["name"])
        if held is not None and held.uid == meta.get("uid"):
            return held.task.task_definition
        return None

    # --- internals
    def _convert(self, obj: Obj) -> models.Task | None:
        """The BBS Task of ``obj``; None when it cannot be read, or its definition Secret has not
        been seen yet, or it is larger than the operator holds (`taskop.domain.limits`: the BBS
        API refuses to desire such a task; one made with kubectl is failed by the reconciler)."""
        meta = obj.get("metadata") or {}
        if task_bytes(obj.get("spec") or {}, meta.get("annotations")) > self.max_task_bytes:
            return None
        definition = None
        if definition_secret_of(obj) is not None:
            definition = self._definition(obj)
            if definition is None:
                return None
        try:
            return resource_to_task(obj, definition)
        except Exception:
            log.exception(
                "cannot read Task as a BBS task; leaving it out",
                extra={"task": obj.get("metadata", {}).get("name")},
            )
            return None

    def _store(self, obj: Obj, *, watched: bool) -> models.Task | None:
        meta = obj["metadata"]
        name, uid, rv = meta["name"], meta.get("uid", ""), meta.get("resourceVersion", "")
        if _deleting(obj):
            self._remove(name, uid, rv)
            return None
        tomb = self._tombstones.get(name)
        if tomb is not None:
            if tomb[0] == uid and not _newer(rv, tomb[1]):
                return None
            if tomb[0] == uid:
                return None  # a deleted object never comes back with the same uid
            del self._tombstones[name]
        held = self._entries.get(name)
        if held is not None and held.uid == uid and not _newer(rv, held.resource_version):
            return held.task if held.resource_version == rv else None
        task = self._convert(obj)
        if task is None:
            if definition_secret_of(obj) is not None and self._definition(obj) is None:
                self._hold_back(obj, watched)
            return None
        self._waiting.pop(name, None)
        self._definitions.pop(uid, None)  # held in the entry from now on
        if held is not None and self._by_guid.get(held.guid) == name:
            del self._by_guid[held.guid]
        entry = Entry(
            name,
            uid,
            rv,
            guid_of(obj),
            sys.intern(task.domain),  # a few distinct values, held by every entry
            sys.intern(task.cell_id),
            bool((obj.get("spec") or {}).get("external")),
            _slim(obj) if self._store_of is None else b"",
            _encode(task),
        )
        self._entries[name] = entry
        self._by_guid[entry.guid] = name
        return task

    def _hold_back(self, obj: Obj, watched: bool) -> None:
        """Keep the newest version of a Task waiting for its definition Secret."""
        meta = obj["metadata"]
        waiting = self._waiting.get(meta["name"])
        if waiting is not None and waiting[0]["metadata"].get("uid") == meta.get("uid"):
            held_obj, held_watched = waiting
            watched = watched or held_watched
            if not _newer(meta.get("resourceVersion"), held_obj["metadata"].get("resourceVersion")):
                obj = held_obj
        self._waiting[meta["name"]] = (obj, watched)

    def _remove(self, name: str, uid: str, rv: str) -> None:
        waiting = self._waiting.get(name)
        if waiting is not None and (not uid or waiting[0]["metadata"].get("uid") == uid):
            del self._waiting[name]
        if uid:
            self._definitions.pop(uid, None)
        entry = self._entries.get(name)
        if entry is not None and (not uid or entry.uid == uid):
            del self._entries[name]
            if self._by_guid.get(entry.guid) == name:
                del self._by_guid[entry.guid]
        if uid:
            self._tombstones[name] = (uid, rv)
            self._tombstones.move_to_end(name)
            while len(self._tombstones) > MAX_TOMBSTONES:
                self._tombstones.popitem(last=False)

    def _diff(self, obj: Obj, task: models.Task | None) -> None:
        name = obj["metadata"]["name"]
        if not _initialised(obj):
            return
        if task is None:
            task = self._convert(obj)
            if task is None:
                return
        before = self._published.get(name)
        encoded = _encode(task)
        held = self._entries.get(name)
        if held is not None and held.task_bytes == encoded:
            encoded = held.task_bytes  # one copy in memory, not two
        if before is None:
            self._publish(TaskEvent(events.TASK_CREATED, task))
        elif before != encoded:
            self._publish(TaskEvent(events.TASK_CHANGED, task, _decode(before)))
        self._published[name] = encoded

    def _publish(self, event: TaskEvent) -> None:
        if self.hub is not None:
            self.hub.publish(event)
