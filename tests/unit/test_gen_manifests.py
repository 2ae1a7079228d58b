"""One run of hack/gen-manifests is enough after a CRD change: deploy/ and the chart's CRD copies
then match crds/ (no second run, no drift left). No cluster; helm is built by hack/build-helm."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = "description: BBS task state"
CHANGED = "description: BBS task state (changed by test_gen_manifests)"


def copy_sources(to: Path) -> None:
    """What gen-manifests reads and writes: the script, crds/, the chart and deploy/."""
    (to / "hack").mkdir()
    shutil.copy2(ROOT / "hack" / "gen-manifests", to / "hack" / "gen-manifests")
    for tree in ("crds", "charts", "deploy"):
        shutil.copytree(ROOT / tree, to / tree)


def gen(root: Path, helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "hack" / "gen-manifests"), "--helm", helm, *args],
        capture_output=True,
        text=True,
    )


def test_one_run_after_a_crd_change_leaves_no_drift(helm: str, tmp_path: Path) -> None:
    copy_sources(tmp_path)
    crd = tmp_path / "crds" / "taskop.dev_tasks.yaml"
    text = crd.read_text()
    assert MARK in text, "the CRD field this test changes has moved: pick another"
    crd.write_text(text.replace(MARK, CHANGED, 1))
    assert gen(tmp_path, helm, "--check").returncode == 1  # the change is drift until generated

    first = gen(tmp_path, helm)

    assert first.returncode == 0, first.stderr
    check = gen(tmp_path, helm, "--check")
    assert check.returncode == 0, "drift after one run:\n" + check.stdout[-4000:] + check.stderr
    chart_copy = tmp_path / "charts" / "taskop" / "crds" / "taskop.dev_tasks.yaml"
    assert CHANGED in chart_copy.read_text()
    assert CHANGED in (tmp_path / "deploy" / "crds.yaml").read_text()


def test_check_mode_writes_nothing(helm: str, tmp_path: Path) -> None:
    copy_sources(tmp_path)
    crd = tmp_path / "crds" / "taskop.dev_tasks.yaml"
    crd.write_text(crd.read_text().replace(MARK, CHANGED, 1))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    check = gen(tmp_path, helm, "--check")

    assert check.returncode == 1
    # the diff shows deploy/'s CRDs changing too, not only the chart's copy
    assert "deploy/crds.yaml" in check.stdout
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
