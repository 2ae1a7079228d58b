"""taskop's .proto files have BBS's field numbers, types, labels, oneofs, enums and reservations.

Compares descriptors compiled from BBS's own `.proto` files (the Go module
code.cloudfoundry.org/bbs, found in the Go module cache or $TASKOP_BBS_MODELS) with ours. The only
allowed differences are the free-text fields declared `bytes` instead of `string` (same wire).
Skipped when the BBS sources are not on this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[3]
OURS = ROOT / "operator" / "taskop" / "bbs" / "proto"
BYTES_INSTEAD_OF_STRING = {
    ("Task", 9),
    ("Task", 11),
    ("Task", 13),
    ("CompleteTaskRequest", 4),
    ("CompleteTaskRequest", 5),
    ("FailTaskRequest", 2),
    ("RejectTaskRequest", 2),
}
# Only the gogoproto options BBS's protos use; they never change the wire.
GOGO_STUB = """syntax = "proto2";
package gogoproto;
import "google/protobuf/descriptor.proto";
extend google.protobuf.FileOptions {
  optional bool goproto_enum_prefix_all = 63002; optional bool equal_all = 63013; }
extend google.protobuf.EnumValueOptions { optional string enumvalue_customname = 66001; }
extend google.protobuf.MessageOptions { optional bool onlyone = 64009; }
extend google.protobuf.FieldOptions {
  optional bool nullable = 65001; optional bool embed = 65002;
  optional string customtype = 65003; optional string jsontag = 65005; }
"""


def bbs_models_dir() -> Path:
    """The models/ of the pinned code.cloudfoundry.org/bbs (hack/versions.env), downloaded
    through the Go module proxy when it is not in the module cache yet."""
    if explicit := os.environ.get("TASKOP_BBS_MODELS"):
        return Path(explicit)
    root = Path(__file__).resolve().parents[3]
    versions = dict(
        line.split("=", 1)
        for line in (root / "hack" / "versions.env").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    module = f"code.cloudfoundry.org/bbs@{versions['BBS_CLIENT_VERSION'].strip()}"
    proc = subprocess.run(
        ["go", "mod", "download", "-json", module],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root / "tests" / "bbsconformance",
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    assert proc.returncode == 0, f"go mod download {module} failed: {proc.stdout}{proc.stderr}"
    return Path(json.loads(proc.stdout)["Dir"]) / "models"


def compile_set(
    tmp: Path, includes: list[Path], files: list[Path]
) -> descriptor_pb2.FileDescriptorSet:
    import grpc_tools

    out = tmp / f"set{len(list(tmp.iterdir()))}.pb"
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{well_known}"]
    cmd += [f"-I{inc}" for inc in includes]
    cmd += ["--include_imports", f"--descriptor_set_out={out}", *map(str, files)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    result = descriptor_pb2.FileDescriptorSet()
    result.ParseFromString(out.read_bytes())
    return result


def shapes(fds: descriptor_pb2.FileDescriptorSet) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def walk(prefix: str, msg: descriptor_pb2.DescriptorProto) -> None:
        name = prefix + msg.name
        found[name] = {
            f.number: (
                f.name,
                f.type,
                f.label,
                f.type_name.rsplit(".", 1)[-1],
                f.options.packed if f.options.HasField("packed") else None,
                msg.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None,
            )
            for f in msg.field
        }
        found[name + " reserved"] = [(r.start, r.end) for r in msg.reserved_range]
        for enum in msg.enum_type:
            found[f"{name}.{enum.name}"] = (
                {v.number: v.name for v in enum.value},
                [(r.start, r.end) for r in enum.reserved_range],
            )
        for nested in msg.nested_type:
            walk(name + ".", nested)

    for file in fds.file:
        if file.package == "models":
            for msg in file.message_type:
                walk("", msg)
    return found


def test_protos_match_bbs(tmp_path: Path) -> None:
    models_dir = bbs_models_dir()
    gogo = tmp_path / "inc" / "github.com" / "gogo" / "protobuf" / "gogoproto" / "gogo.proto"
    gogo.parent.mkdir(parents=True)
    gogo.write_text(GOGO_STUB)
    work = tmp_path / "work"
    work.mkdir()
    theirs = shapes(
        compile_set(
            work,
            [tmp_path / "inc", models_dir],
            [
                models_dir / n
                for n in ("task_requests.proto", "events.proto", "ping.proto", "domain.proto")
            ],
        )
    )
    ours = shapes(compile_set(work, [OURS], sorted(OURS.glob("*.proto"))))
    assert ours.keys() <= theirs.keys()
    for name, shape in ours.items():
        expected = theirs[name]
        if isinstance(shape, dict):
            for number in BYTES_INSTEAD_OF_STRING:
                if number[0] == name:
                    field = expected[number[1]]
                    assert field[1] == descriptor_pb2.FieldDescriptorProto.TYPE_STRING
                    bytes_type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                    expected = {**expected, number[1]: (field[0], bytes_type, *field[2:])}
        assert shape == expected, name
