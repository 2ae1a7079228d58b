"""Docs that cannot rot: README.md and docs/ link only to what exists, every example manifest is
applied by a test, and every setting is documented from its one source (no cluster, seconds)."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from taskop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*") if p.suffix in (".yaml", ".yml"))

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""<(?:a|img)\s[^>]*?(?:href|src)=["']([^"']+)["']""")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """The text outside fenced code blocks and code spans, where a link is a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation but - and _ dropped,
    spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        if m := re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line):
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            result.add(base if n == 0 else f"{base}-{n}")
    return result


def links(page: Path) -> list[str]:
    text = prose(page.read_text())
    return [m.group(1) for m in LINK.finditer(text)] + HTML_LINK.findall(text)


def test_there_are_docs_to_check() -> None:
    names = {p.name for p in DOCS}
    assert {"tasks.md", "bbs.md", "glance.md", "taskstore.md", "install.md", "design.md"} <= names
    assert {"development.md", "settings.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: — not ours to check
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file {dest.relative_to(ROOT)}")
        elif not dest.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not broken, f"{page.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_the_readme_is_a_five_minute_read_with_a_map_of_docs() -> None:
    """At most 250 lines, and every page of docs/ is reached from it, by links between pages."""
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 250
    reached, todo = set(), [readme.resolve()]
    while todo:
        page = todo.pop()
        if page in reached or not page.is_file() or page.suffix != ".md":
            continue
        reached.add(page)
        for target in links(page):
            path = target.partition("#")[0]
            if path and not re.match(r"^[a-z][a-z0-9+.-]*:", path):
                todo.append((page.parent / path).resolve())
    assert not [p.name for p in DOCS if p.resolve() not in reached], "docs/ pages not reached"


def names_applied(module: Path) -> set[str]:
    """Example file names a test module names in its code, when it also creates or applies
    something. Docstrings, comments and set literals (lists of names pointing elsewhere, such as
    test_examples.py's REAL_NODE) do not count."""
    tree = ast.parse(module.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Set):
            skip.update(id(e) for e in node.elts)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip.add(id(body[0].value))
    strings = {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
    }
    calls = {
        n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    applies = "apply" in strings or bool(calls & {"create", "create_namespaced_custom_object"})
    if not applies:
        return set()
    return {e.name for e in EXAMPLES if any(e.name in s for s in strings)}


def test_every_example_is_applied_by_a_test() -> None:
    applied: dict[str, list[str]] = {}
    for module in sorted((ROOT / "tests").rglob("test_*.py")):
        if module.resolve() == Path(__file__).resolve():
            continue
        for name in names_applied(module):
            applied.setdefault(name, []).append(str(module.relative_to(ROOT)))
    missing = [e.name for e in EXAMPLES if e.name not in applied]
    assert EXAMPLES
    assert not missing, f"examples/ no test applies (add a test on the cluster): {missing}"


def test_docs_settings_table_is_generated_from_settings_py() -> None:
    """docs/settings.md is exactly what hack/gen-docs makes from the settings' own docs."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "gen-docs"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr


def test_every_setting_appears_in_docs() -> None:
    text = "".join(p.read_text() for p in DOCS)
    variables = [f"TASKOP_{f.name.upper()}" for f in dataclasses.fields(Settings)]
    assert not [v for v in variables if not re.search(rf"\b{v}\b", text)]


def test_every_taskop_variable_the_docs_name_exists() -> None:
    """A TASKOP_* name in README or docs/ is a setting, or is read by the project's scripts and
    tests (hack/, tests/, bench/: TASKOP_CACHE, TASKOP_TEST_WORKERS, …); a prefix ending in _
    (TASKOP_GLANCE_*) names some of them. A renamed setting leaves no stale name behind."""
    settings = {f"TASKOP_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    sources = "".join(
        p.read_text(errors="replace")
        for tree in ("hack", "tests", "bench", "operator", "executor", ".ci")
        for p in (ROOT / tree).rglob("*")
        if p.is_file() and p.suffix not in (".md", ".pyc") and p.stat().st_size < 1_000_000
    )
    known = settings | set(re.findall(r"\bTASKOP_[A-Z0-9_]*[A-Z0-9]\b", sources))
    unknown = set()
    for page in PAGES:
        for name in re.findall(r"\bTASKOP_[A-Z0-9_]+", page.read_text()):
            if name.endswith("_"):
                if not any(k.startswith(name) for k in known):
                    unknown.add(name)
            elif name not in known:
                unknown.add(name)
    assert not unknown, f"named in the docs, but no setting or script reads them: {unknown}"
