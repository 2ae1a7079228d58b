"""The Task ``spec``: pydantic models matching ``crds/taskop.dev_tasks.yaml`` field by field."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

import pydantic
from pydantic import Field
from pydantic.alias_generators import to_camel

from taskop.domain.lifecycle import GUID_PATTERN, MAX_ID_LENGTH

MAX_ANNOTATION_BYTES = 10240
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
PLACEMENT_TAG_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")

Str = Annotated[str, Field(max_length=1024)]
LongStr = Annotated[str, Field(max_length=32768)]
LabelValue = Annotated[str, Field(max_length=63)]
Quantity = pydantic.StrictInt | Annotated[str, Field(max_length=64, pattern=QUANTITY_PATTERN)]


class SpecError(ValueError):
    """A Task spec taskop cannot run; ``messages`` name the fields (``spec.image: …``)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class EnvVar(_Model):
    name: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^=]+$")]
    value: LongStr = ""


class ResourceLimits(_Model):
    nofile: Annotated[int, Field(ge=0)] | None = None


class RunAction(_Model):
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    args: Annotated[list[LongStr], Field(max_length=256)] = []
    dir: Annotated[str, Field(max_length=4096)] = ""
    user: Annotated[str, Field(max_length=256)] = ""
    env: Annotated[list[EnvVar], Field(max_length=256)] = []
    resource_limits: ResourceLimits | None = None


class Action(_Model):
    run: RunAction


class LocalObjectReference(_Model):
    name: Annotated[str, Field(min_length=1, max_length=253)]


class Toleration(_Model):
    key: Annotated[str, Field(max_length=317)] = ""
    operator: Literal["Exists", "Equal"] | None = None
    value: Annotated[str, Field(max_length=63)] = ""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""
    toleration_seconds: int | None = None


class PodResources(_Model):
    requests: Annotated[dict[str, Quantity], Field(max_length=16)] = {}
    limits: Annotated[dict[str, Quantity], Field(max_length=16)] = {}


class PodTemplate(_Model):
    node_selector: Annotated[dict[str, LabelValue], Field(max_length=64)] = {}
    tolerations: Annotated[list[Toleration], Field(max_length=64)] = []
    service_account_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    image_pull_secrets: Annotated[list[LocalObjectReference], Field(max_length=16)] = []
    resources: PodResources | None = None


class TaskSpec(_Model):
    """A BBS TaskDefinition in Kubernetes idiom, plus Kubernetes-native extras."""

    guid: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] | None = None
    domain: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] = "taskop"
    image: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    rootfs: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    action: Action
    env: Annotated[list[EnvVar], Field(max_length=256)] = []
    memory_mb: Annotated[int, Field(ge=0)] = 0
    disk_mb: Annotated[int, Field(ge=0)] = 0
    cpu_weight: Annotated[int, Field(ge=0, le=100)] = 0
    max_pids: Annotated[int, Field(ge=0)] = 0
    privileged: bool = False
    result_file: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    completion_callback_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    annotation: Annotated[str, Field(max_length=MAX_ANNOTATION_BYTES)] = ""
    placement_tags: Annotated[
        list[Annotated[str, Field(pattern=PLACEMENT_TAG_PATTERN)]], Field(max_length=16)
    ] = []
    log_source: Str = ""
    log_guid: Str = ""
    metrics_guid: Str = ""
    timeout_seconds: Annotated[int, Field(ge=1)] | None = None
    retries: Annotated[int, Field(ge=0, le=100)] = 0
    external: bool = False
    cancelled: bool = False
    pod_template: PodTemplate | None = None

    @pydantic.field_validator("guid")
    @classmethod
    def _guid(cls, value: str | None) -> str | None:
        if value is not None and not GUID_PATTERN.fullmatch(value):
            raise ValueError("must match ^[a-zA-Z0-9_-]+$")
        return value

    @pydantic.field_validator("rootfs")
    @classmethod
    def _rootfs(cls, value: str | None) -> str | None:
        if value is not None:
            rootfs_image(value)  # a rootfs taskop cannot run is an error now, not at Job time
        return value

    @pydantic.field_validator("result_file")
    @classmethod
    def _result_file(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must be an absolute path")
        return value

    @pydantic.field_validator("completion_callback_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        if value is not None:
            url = urllib.parse.urlsplit(value)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @pydantic.field_validator("annotation")
    @classmethod
    def _annotation(cls, value: str) -> str:
        if len(value.encode("utf-8", "surrogateescape")) > MAX_ANNOTATION_BYTES:
            raise ValueError(f"must be at most {MAX_ANNOTATION_BYTES} bytes")
        return value

    @pydantic.model_validator(mode="after")
    def _image_or_rootfs(self) -> Self:
        if (self.image is None) == (self.rootfs is None):
            raise ValueError("exactly one of spec.image and spec.rootfs must be set")
        return self

    def task_guid(self, name: str) -> str:
        """The BBS guid: ``spec.guid``, defaulting to the Task's metadata.name."""
        return self.guid if self.guid is not None else name

    def image_reference(self) -> str:
        """The OCI image to run: ``image``, or the image named by a ``docker://`` rootfs."""
        if self.image is not None:
            return self.image
        assert self.rootfs is not None
        return rootfs_image(self.rootfs)


def rootfs_image(rootfs: str) -> str:
    """``docker:///busybox`` → ``busybox``; ``docker://host/x#tag`` → ``host/x:tag``."""
    scheme, sep, rest = rootfs.partition(":")
    if not sep or scheme != "docker":
        raise ValueError(
            f"rootfs {rootfs} cannot run on Kubernetes: use image or a docker:// rootfs"
        )
    if not rest.startswith("//"):
        raise ValueError(f"rootfs {rootfs} is not a docker:// URL (docker:///busybox)")
    host, _, path = rest[2:].partition("/")
    path, _, fragment = path.partition("#")
    path = path.strip("/")
    if not path:
        raise ValueError(f"rootfs {rootfs} names no image (docker:///busybox)")
    reference = f"{host}/{path}" if host else path
    if fragment:
        reference += ("@" if _DIGEST.fullmatch(fragment) else ":") + fragment
    return reference


def parse_spec(data: Mapping[str, Any]) -> TaskSpec:
    """Validate a Task spec; `SpecError` with one ``spec.<field>: <problem>`` message per error."""
    try:
        return TaskSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        raise SpecError([_message(error) for error in exc.errors()]) from None


def _message(error: Any) -> str:
    loc = "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    return msg if loc == "spec" else f"{loc}: {msg}"
