"""The generated protobuf code matches its single source, and imports cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GEN_PROTO = ROOT / "hack" / "gen-proto"
GENERATED = ROOT / "operator" / "taskop" / "bbs" / "generated"


def test_generated_code_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(GEN_PROTO), "--check"],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_every_proto_has_generated_code() -> None:
    protos = {p.stem for p in (ROOT / "operator" / "taskop" / "bbs" / "proto").glob("*.proto")}
    modules = {p.name.removesuffix("_pb2.py") for p in GENERATED.glob("*_pb2.py")}
    stubs = {p.name.removesuffix("_pb2.pyi") for p in GENERATED.glob("*_pb2.pyi")}
    assert protos == modules == stubs


def test_generated_modules_import_without_warnings() -> None:
    """A fresh interpreter with warnings as errors imports every generated module."""
    names = sorted(p.stem for p in GENERATED.glob("*_pb2.py"))
    code = "; ".join(f"import taskop.bbs.generated.{name}" for name in names)
    code += "; import taskop.bbs.models"
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
