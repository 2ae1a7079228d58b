"""The Task ``spec``: pydantic models matching ``crds/taskop.dev_tasks.yaml`` field by field."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, Self

import pydantic
from pydantic import Field
from pydantic.alias_generators import to_camel

from taskop.domain.addresses import cidrs
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
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
ChecksumAlgorithm = Literal["md5", "sha1", "sha256"]
Quantity = pydantic.StrictInt | Annotated[str, Field(max_length=64, pattern=QUANTITY_PATTERN)]


class SpecError(ValueError):
    """A Task spec taskop cannot run; ``messages`` name the fields (``spec.image: …``)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class PreloadedRootfs(ValueError):
    """A ``preloaded:<stack>`` rootfs: the image is the domain profile's to say."""


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


ObjectName = Annotated[str, Field(min_length=1, max_length=253)]
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Mode = Annotated[int, Field(ge=0, le=0o777)]


def _exactly_one(model: pydantic.BaseModel, fields: tuple[str, ...], what: str) -> None:
    set_ = [f for f in fields if getattr(model, f) is not None]
    if len(set_) != 1:
        names = ", ".join(to_camel(f) for f in fields)
        raise ValueError(f"{what} needs exactly one of {names}")


class KeySelector(_Model):
    """A key of a Secret or ConfigMap in the Task's namespace (Kubernetes' own shape)."""

    name: ObjectName
    key: Annotated[str, Field(min_length=1, max_length=253)]
    optional: bool = False


class FieldSelector(_Model):
    field_path: Annotated[str, Field(min_length=1, max_length=256)]
    api_version: Annotated[str, Field(max_length=64)] = ""


class EnvVarSource(_Model):
    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None
    field_ref: FieldSelector | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, ("secret_key_ref", "config_map_key_ref", "field_ref"), "valueFrom")
        return self


class EnvVar(_Model):
    name: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^=]+$")]
    value: LongStr = ""


class TaskEnvVar(EnvVar):
    """A variable of the task's container: a value, or one Kubernetes fills in (valueFrom)."""

    value_from: EnvVarSource | None = None

    @pydantic.model_validator(mode="after")
    def _value_or_from(self) -> Self:
        if self.value and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


class NameRef(_Model):
    name: ObjectName
    optional: bool = False


class EnvFromSource(_Model):
    prefix: Annotated[str, Field(max_length=253)] = ""
    secret_ref: NameRef | None = None
    config_map_ref: NameRef | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, ("secret_ref", "config_map_ref"), "envFrom")
        return self


class KeyToPath(_Model):
    key: Annotated[str, Field(min_length=1, max_length=253)]
    path: Annotated[str, Field(min_length=1, max_length=1024)]
    mode: Mode | None = None


class SecretVolume(_Model):
    secret_name: ObjectName
    items: Annotated[list[KeyToPath], Field(max_length=64)] = []
    default_mode: Mode | None = None
    optional: bool = False


class ConfigMapVolume(_Model):
    name: ObjectName
    items: Annotated[list[KeyToPath], Field(max_length=64)] = []
    default_mode: Mode | None = None
    optional: bool = False


class ClaimVolume(_Model):
    claim_name: ObjectName
    read_only: bool = False


class EmptyDirVolume(_Model):
    medium: Literal["", "Memory"] = ""
    size_limit: Quantity | None = None


class ProjectedRef(_Model):
    name: ObjectName
    items: Annotated[list[KeyToPath], Field(max_length=64)] = []
    optional: bool = False


class Projection(_Model):
    secret: ProjectedRef | None = None
    config_map: ProjectedRef | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, ("secret", "config_map"), "a projected source")
        return self


class ProjectedVolume(_Model):
    sources: Annotated[list[Projection], Field(min_length=1, max_length=16)]
    default_mode: Mode | None = None


VOLUME_KINDS = ("secret", "config_map", "persistent_volume_claim", "empty_dir", "projected")


class Volume(_Model):
    """A volume of the task's pod: only the kinds whose meaning is clear for one task."""

    name: Annotated[
        str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    ]
    secret: SecretVolume | None = None
    config_map: ConfigMapVolume | None = None
    persistent_volume_claim: ClaimVolume | None = None
    empty_dir: EmptyDirVolume | None = None
    projected: ProjectedVolume | None = None

    @pydantic.field_validator("name")
    @classmethod
    def _not_taskops(cls, value: str) -> str:
        if value.startswith("taskop-"):
            raise ValueError("names starting with taskop- are taskop's own volumes")
        return value

    @pydantic.model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, VOLUME_KINDS, f"volume {self.name!r}")
        return self


class VolumeMount(_Model):
    name: Annotated[str, Field(min_length=1, max_length=63)]
    mount_path: Annotated[str, Field(min_length=1, max_length=1024)]
    read_only: bool = False
    sub_path: Annotated[str, Field(max_length=1024)] = ""

    @pydantic.field_validator("mount_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path")
        if value == "/taskop" or value.startswith("/taskop/"):
            raise ValueError("/taskop is taskop's own (the executor, its spec and the result)")
        return value


class ResourceLimits(_Model):
    nofile: Annotated[int, Field(ge=0)] | None = None


class RunAction(_Model):
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    args: Annotated[list[LongStr], Field(max_length=256)] = []
    dir: Annotated[str, Field(max_length=4096)] = ""
    user: Annotated[str, Field(max_length=256)] = ""
    env: Annotated[list[TaskEnvVar], Field(max_length=256)] = []
    """The process's own variables, on top of the container's: a value, or one Kubernetes fills
    in (``valueFrom``: the container gets it, the executor hands it to this process only)."""
    resource_limits: ResourceLimits | None = None
    log_source: Str = ""
    suppress_log_output: bool = False


class _Fetch(_Model):
    """What a download and a cached dependency share: an archive at ``from``, checked, extracted
    into ``to``."""

    from_: Annotated[str, Field(alias="from", min_length=1, max_length=4096)]
    to: Annotated[str, Field(min_length=1, max_length=4096)]
    cache_key: Str = ""
    log_source: Str = ""
    checksum_algorithm: ChecksumAlgorithm | None = None
    checksum_value: Str = ""

    @pydantic.model_validator(mode="after")
    def _checksum(self) -> Self:
        if bool(self.checksum_algorithm) != bool(self.checksum_value):
            raise ValueError("checksumAlgorithm and checksumValue must be set together")
        if self.checksum_value and not re.fullmatch(r"[0-9a-fA-F]+", self.checksum_value):
            raise ValueError("checksumValue must be hexadecimal")
        return self


class DownloadAction(_Fetch):
    """Fetch ``from`` (a tgz, tar or zip), verify its checksum, extract it into ``to``."""

    artifact: Str = ""
    user: Annotated[str, Field(max_length=256)] = ""


class UploadAction(_Model):
    """POST the file (or the directory, as a tar) at ``from`` to the URL ``to``."""

    artifact: Str = ""
    from_: Annotated[str, Field(alias="from", min_length=1, max_length=4096)]
    to: Annotated[str, Field(min_length=1, max_length=4096)]
    log_source: Str = ""
    user: Annotated[str, Field(max_length=256)] = ""


class TimeoutAction(_Model):
    action: Action
    timeout_ms: Annotated[int, Field(ge=1)]
    log_source: Str = ""


class EmitProgressAction(_Model):
    action: Action
    start_message: LongStr = ""
    success_message: LongStr = ""
    failure_message_prefix: LongStr = ""
    log_source: Str = ""


class TryAction(_Model):
    action: Action
    log_source: Str = ""


class ActionList(_Model):
    actions: Annotated[list[Action], Field(min_length=1, max_length=64)]
    log_source: Str = ""


class Action(_Model):
    """One BBS action: exactly one field is set. Trees nest through timeout, emitProgress, try
    (``action``) and serial, parallel, codependent (``actions``), `MAX_ACTION_DEPTH` at most."""

    run: RunAction | None = None
    download: DownloadAction | None = None
    upload: UploadAction | None = None
    timeout: TimeoutAction | None = None
    emit_progress: EmitProgressAction | None = None
    try_: TryAction | None = Field(default=None, alias="try")
    parallel: ActionList | None = None
    serial: ActionList | None = None
    codependent: ActionList | None = None

    @pydantic.model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if len(self._set()) != 1:
            raise ValueError(f"exactly one of {', '.join(ACTION_KINDS)} must be set")
        return self

    def _set(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]

    def kind(self) -> str:
        """The one field that is set, by its spec name (``run``, ``emitProgress``, …)."""
        return str(type(self).model_fields[self._set()[0]].alias)

    def inner(self) -> Any:
        return getattr(self, self._set()[0])

    def children(self) -> list[Action]:
        inner = self.inner()
        if isinstance(inner, ActionList):
            return list(inner.actions)
        if isinstance(inner, TimeoutAction | EmitProgressAction | TryAction):
            return [inner.action]
        return []

    def walk(self, path: str = "spec.action") -> Iterator[tuple[str, Action]]:
        """Every action of the tree with its field path, depth first."""
        yield path, self
        inner = self.inner()
        here = f"{path}.{self.kind()}"
        if isinstance(inner, ActionList):
            for index, child in enumerate(inner.actions):
                yield from child.walk(f"{here}.actions[{index}]")
        elif isinstance(inner, TimeoutAction | EmitProgressAction | TryAction):
            yield from inner.action.walk(f"{here}.action")

    def depth(self) -> int:
        return 1 + max((child.depth() for child in self.children()), default=0)


for _model in (TimeoutAction, EmitProgressAction, TryAction, ActionList, Action):
    _model.model_rebuild()

ACTION_KINDS = (
    "run",
    "download",
    "upload",
    "timeout",
    "emitProgress",
    "try",
    "parallel",
    "serial",
    "codependent",
)
MAX_ACTION_DEPTH = 16
"""Deeper trees are refused (Diego has no limit; real clients nest three or four levels)."""


class CachedDependency(_Fetch):
    """A BBS cached dependency: downloaded and extracted into ``to`` before the action runs."""

    name: Str = ""


class ImageLayer(_Model):
    """A BBS image layer: downloaded, verified by digest and extracted before the action."""

    name: Str = ""
    url: Annotated[str, Field(min_length=1, max_length=4096)]
    destination_path: Annotated[str, Field(min_length=1, max_length=4096)]
    layer_type: Literal["SHARED", "EXCLUSIVE"]
    media_type: Literal["TGZ", "TAR", "ZIP"]
    digest_algorithm: Literal["SHA256", "SHA512"] | None = None
    digest_value: Str = ""

    @pydantic.model_validator(mode="after")
    def _digest(self) -> Self:
        if bool(self.digest_algorithm) != bool(self.digest_value):
            raise ValueError("digestAlgorithm and digestValue must be set together")
        if self.layer_type == "EXCLUSIVE" and not self.digest_value:
            raise ValueError("an EXCLUSIVE layer needs digestAlgorithm and digestValue")
        return self


class PortRange(_Model):
    start: Annotated[int, Field(ge=1, le=65535)]
    end: Annotated[int, Field(ge=1, le=65535)]


class ICMPInfo(_Model):
    type: int
    code: int


class EgressRule(_Model):
    """A BBS security-group rule (Cloud Controller's security groups): what the pod may reach."""

    protocol: Literal["tcp", "udp", "icmp", "icmpv6", "all"]
    destinations: Annotated[
        list[Annotated[str, Field(max_length=1024)]], Field(min_length=1, max_length=64)
    ]
    ports: Annotated[list[Annotated[int, Field(ge=1, le=65535)]], Field(max_length=64)] = []
    port_range: PortRange | None = None
    icmp_info: ICMPInfo | None = None
    log: bool = False
    annotations: Annotated[list[Str], Field(max_length=64)] = []

    @pydantic.model_validator(mode="after")
    def _shape(self) -> Self:
        ports = bool(self.ports) + (self.port_range is not None)
        if self.protocol in ("tcp", "udp") and ports != 1:
            raise ValueError("tcp and udp rules need exactly one of ports and portRange")
        if self.protocol not in ("tcp", "udp") and ports:
            raise ValueError(f"{self.protocol} rules take no ports")
        if self.port_range is not None and self.port_range.start > self.port_range.end:
            raise ValueError("portRange.start must not be above portRange.end")
        if (self.icmp_info is not None) != (self.protocol in ("icmp", "icmpv6")):
            raise ValueError("icmpInfo is set exactly for icmp and icmpv6 rules")
        for destination in self.destinations:
            try:
                cidrs(destination)
            except ValueError as e:
                raise ValueError(f"destination {destination!r}: {e}") from None
        return self


class MetricTagValue(_Model):
    """A BBS metric tag: a static value, or one the cell fills in (INDEX, INSTANCE_GUID)."""

    static: Annotated[str, Field(max_length=1024)] = ""
    dynamic: Literal["INDEX", "INSTANCE_GUID"] | None = None


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


class MountedFile(_Model):
    """A BBS volume-mounted file (a file-based service binding), here without its content: the
    content lives in the Task's files Secret (``<task>-files``), mounted read-only with every
    other file under ``/etc/cf-service-bindings``, as a Diego cell does."""

    path: Annotated[str, Field(min_length=1, max_length=1024)]

    @pydantic.field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        parts = value.strip("/").split("/")
        if len(parts) < 2 or any(part in ("", ".", "..") for part in parts):
            raise ValueError(
                f"{value!r} must be <service>/<file> (Diego's form /redis/username): two or more"
                " path parts, none empty, . or .."
            )
        return value


class PodTemplate(_Model):
    node_selector: Annotated[dict[str, LabelValue], Field(max_length=64)] = {}
    tolerations: Annotated[list[Toleration], Field(max_length=64)] = []
    service_account_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    priority_class_name: ObjectName | None = None
    runtime_class_name: ObjectName | None = None
    affinity: dict[str, Any] | None = None
    topology_spread_constraints: Annotated[list[dict[str, Any]], Field(max_length=8)] = []
    security_context: dict[str, Any] | None = None
    container_security_context: dict[str, Any] | None = None
    fs_group: Annotated[int, Field(ge=0)] | None = None
    image_pull_secrets: Annotated[list[LocalObjectReference], Field(max_length=16)] = []
    resources: PodResources | None = None


class TaskSpec(_Model):
    """A BBS TaskDefinition in Kubernetes idiom, plus Kubernetes-native extras."""

    guid: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] | None = None
    domain: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] = "taskop"
    image: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    rootfs: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    action: Action
    downloads: Annotated[list[CachedDependency], Field(max_length=64)] = []
    image_layers: Annotated[list[ImageLayer], Field(max_length=64)] = []
    log_rate_limit: Annotated[int, Field(ge=-1)] | None = None
    egress_rules: Annotated[list[EgressRule], Field(max_length=256)] = []
    metric_tags: Annotated[dict[str, MetricTagValue], Field(max_length=64)] | None = None
    network_properties: Annotated[dict[str, Str], Field(max_length=64)] | None = None
    certificate_organizational_units: Annotated[list[Str], Field(max_length=64)] | None = None
    legacy_download_user: Annotated[str, Field(max_length=256)] = ""
    trusted_system_certificates_path: Annotated[str, Field(max_length=4096)] = ""
    volume_mounted_files: Annotated[list[MountedFile], Field(max_length=64)] = []
    env: Annotated[list[TaskEnvVar], Field(max_length=256)] = []
    env_from: Annotated[list[EnvFromSource], Field(max_length=64)] = []
    volumes: Annotated[list[Volume], Field(max_length=32)] = []
    volume_mounts: Annotated[list[VolumeMount], Field(max_length=64)] = []
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
    ttl_seconds_after_finished: Annotated[int, Field(ge=0)] | None = None
    retries: Annotated[int, Field(ge=0, le=100)] = 0
    queue_name: (
        Annotated[str, Field(min_length=1, max_length=63, pattern=LABEL_VALUE_PATTERN)] | None
    ) = None
    """The Kueue LocalQueue the task waits in (`taskop.domain.queueing`)."""
    priority_class_name: (
        Annotated[str, Field(min_length=1, max_length=63, pattern=LABEL_VALUE_PATTERN)] | None
    ) = None
    """Kueue's WorkloadPriorityClass for the task's Workload (only with a queue)."""
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
            try:
                rootfs_image(value)  # a rootfs taskop cannot run is an error now, not at Job time
            except PreloadedRootfs:
                pass  # its image comes from the domain profile
        return value

    @pydantic.field_validator("result_file", "trusted_system_certificates_path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value and not value.startswith("/"):
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

    @pydantic.field_validator("action")
    @classmethod
    def _action_depth(cls, value: Action) -> Action:
        if value.depth() > MAX_ACTION_DEPTH:
            raise ValueError(f"the action tree is deeper than {MAX_ACTION_DEPTH} levels")
        return value

    @pydantic.model_validator(mode="after")
    def _mounts_name_volumes(self) -> Self:
        names = [v.name for v in self.volumes]
        if len(set(names)) != len(names):
            raise ValueError("spec.volumes: each volume needs its own name")
        for i, mount in enumerate(self.volume_mounts):
            if mount.name not in names:
                raise ValueError(
                    f"spec.volumeMounts[{i}]: no volume named {mount.name!r} in spec.volumes"
                )
        return self

    @pydantic.model_validator(mode="after")
    def _image_or_rootfs(self) -> Self:
        if (self.image is None) == (self.rootfs is None):
            raise ValueError("exactly one of spec.image and spec.rootfs must be set")
        return self

    def task_guid(self, name: str) -> str:
        """The BBS guid: ``spec.guid``, defaulting to the Task's metadata.name."""
        return self.guid if self.guid is not None else name

    def image_reference(self, stacks: Mapping[str, str] | None = None) -> str:
        """The OCI image to run: ``image``, the image named by a ``docker://`` rootfs, or the
        image ``stacks`` (the domain profile's) maps a ``preloaded:<stack>`` rootfs to;
        SpecError when the stack is not mapped."""
        if self.image is not None:
            return self.image
        assert self.rootfs is not None
        scheme, _, stack = self.rootfs.partition(":")
        if scheme == "preloaded":
            if stacks and stack in stacks:
                return stacks[stack]
            known = ", ".join(sorted(stacks or ())) or "none"
            raise SpecError(
                [
                    f"spec.rootfs: stack {stack!r} has no image in the profile of domain"
                    f" {self.domain!r} (stacks it maps: {known}); ask the admin to map it in"
                    " taskop's domain profiles, or use a docker:// rootfs"
                ]
            )
        return rootfs_image(self.rootfs)


def rootfs_image(rootfs: str) -> str:
    """``docker:///busybox`` → ``busybox``; ``docker://host/x#tag`` → ``host/x:tag``.

    ``preloaded:<stack>`` is valid too, but its image is the domain profile's: ValueError here.
    """
    scheme, sep, rest = rootfs.partition(":")
    if scheme == "preloaded" and re.fullmatch(PLACEMENT_TAG_PATTERN, rest):
        raise PreloadedRootfs(rest)
    if not sep or scheme != "docker":
        raise ValueError(
            f"rootfs {rootfs} cannot run on Kubernetes: use image, a docker:// rootfs, or a"
            " preloaded:<stack> rootfs whose stack the domain profile maps to an image"
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
