"""The CRD in crds/ and the pydantic models in taskop.domain must describe the same fields."""

from __future__ import annotations

import pathlib
import types
import typing
from typing import Any

import pydantic
import pytest
import yaml

from taskop.domain.spec import TaskSpec
from taskop.domain.states import TaskState
from taskop.domain.status import TaskStatus

CRD_PATH = pathlib.Path(__file__).parents[2] / "crds" / "taskop.dev_tasks.yaml"
CRD = yaml.safe_load(CRD_PATH.read_text())
VERSION = CRD["spec"]["versions"][0]
ROOT = VERSION["schema"]["openAPIV3Schema"]
SPEC = ROOT["properties"]["spec"]
STATUS = ROOT["properties"]["status"]


def _models(annotation: Any, where: str = "self") -> list[tuple[str, type[pydantic.BaseModel]]]:
    """The models inside an annotation, with where they sit: the value, list items, map values."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0], where)
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg, where)]
    if origin is list:
        return _models(typing.get_args(annotation)[0], "items")
    if origin is dict:
        return _models(typing.get_args(annotation)[1], "additionalProperties")
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [(where, annotation)]
    return []


def _compare(model: type[pydantic.BaseModel], schema: dict[str, Any], path: str) -> None:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        # Below the levels the CRD checks (it cannot be recursive), the model alone validates.
        assert path.count(".action") >= 2, path
        return
    properties = schema["properties"]
    fields = {f.alias or name: f for name, f in model.model_fields.items()}
    assert set(properties) == set(fields), path
    required = {alias for alias, f in fields.items() if f.is_required()}
    assert set(schema.get("required", [])) == required, path
    for alias, field in fields.items():
        prop = properties[alias]
        if "default" in prop:
            assert field.default == prop["default"], f"{path}.{alias}"
        for where, nested in _models(field.annotation):
            sub = prop if where == "self" else prop[where]
            _compare(nested, sub, f"{path}.{alias}")


def test_spec_matches_the_model() -> None:
    _compare(TaskSpec, SPEC, "spec")


def test_status_matches_the_model() -> None:
    _compare(TaskStatus, STATUS, "status")
    assert STATUS["properties"]["state"]["enum"] == [s.value for s in TaskState]


def test_crd_identity() -> None:
    assert CRD["apiVersion"] == "apiextensions.k8s.io/v1"
    assert CRD["metadata"]["name"] == "tasks.taskop.dev"
    spec = CRD["spec"]
    assert spec["group"] == "taskop.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "Task",
        "listKind": "TaskList",
        "plural": "tasks",
        "singular": "task",
        "shortNames": ["tsk"],
        "categories": ["taskop"],
    }
    assert [(v["name"], v["served"], v["storage"]) for v in spec["versions"]] == [
        ("v1alpha1", True, True)
    ]
    assert VERSION["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = {c["name"]: c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    assert columns["State"] == ".status.state"
    assert columns["Failed"] == ".status.failed"
    assert columns["Reason"] == ".status.failureReason"
    assert columns["Message"] == '.status.conditions[?(@.type=="Running")].message'
    assert columns["Age"] == ".metadata.creationTimestamp"


def _walk(schema: dict[str, Any], path: str) -> typing.Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from _walk(prop, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")


def test_every_field_is_described() -> None:
    for path, schema in _walk(ROOT, ""):
        if path != ".metadata":
            assert schema.get("description"), path


def test_spec_strings_and_lists_are_bounded_for_cel() -> None:
    for path, schema in _walk(SPEC, "spec"):
        if schema.get("type") == "string" and "enum" not in schema:
            assert "maxLength" in schema, path
        if schema.get("type") == "array":
            assert "maxItems" in schema, path
        if schema.get("type") == "object" and "additionalProperties" in schema:
            assert "maxProperties" in schema, path


def _rules(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return list(schema.get("x-kubernetes-validations", []))


POLICY, BINDING = yaml.safe_load_all(
    (CRD_PATH.parent / "taskop.dev_tasks.immutable.yaml").read_text()
)
IMMUTABLE = "spec.{} is immutable; delete and recreate the Task"


def _uses_old_self(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        rules = [r["rule"] for r in schema.get("x-kubernetes-validations", [])]
        found = [r for r in rules if "oldSelf" in r]
        return found + [r for v in schema.values() for r in _uses_old_self(v)]
    if isinstance(schema, list):
        return [r for v in schema for r in _uses_old_self(v)]
    return []


def test_a_status_write_pays_for_no_transition_rule() -> None:
    """The CRD's rules run on every write, a status write's too: none compares with oldSelf."""
    assert _uses_old_self(CRD) == []


def test_the_immutability_policy_sees_updates_of_tasks_never_of_their_status() -> None:
    assert POLICY["kind"] == "ValidatingAdmissionPolicy"
    assert POLICY["spec"]["failurePolicy"] == "Fail"
    assert POLICY["spec"]["matchConstraints"] == {
        "resourceRules": [
            {
                "apiGroups": ["taskop.dev"],
                "apiVersions": ["*"],
                "operations": ["UPDATE"],
                "resources": ["tasks"],
            }
        ]
    }
    assert BINDING["kind"] == "ValidatingAdmissionPolicyBinding"
    assert BINDING["spec"] == {
        "policyName": POLICY["metadata"]["name"],
        "validationActions": ["Deny"],
    }


def _validation(message: str) -> str:
    [found] = [v for v in POLICY["spec"]["validations"] if v["message"] == message]
    assert found["reason"] == "Invalid"  # 422, as the CRD's own validation answers
    return " ".join(found["expression"].split())


@pytest.mark.parametrize("field", sorted(set(SPEC["properties"]) - {"cancelled"}))
def test_spec_fields_are_immutable(field: str) -> None:
    """Changed, added or removed: refused with a message naming the field."""
    assert _validation(IMMUTABLE.format(field)) == (
        f"variables.unchanged || (has(object.spec.{field}) == has(oldObject.spec.{field})"
        f" && (!has(object.spec.{field}) || object.spec.{field} == oldObject.spec.{field}))"
    )
    assert POLICY["spec"]["variables"] == [
        {"name": "unchanged", "expression": "object.spec == oldObject.spec"}
    ]


def test_cancelled_only_goes_false_to_true() -> None:
    assert SPEC["properties"]["cancelled"]["default"] is False
    message = "spec.cancelled cannot be set back to false; a cancelled Task stays cancelled"
    assert _validation(message) == (
        "variables.unchanged || !has(oldObject.spec.cancelled) || !oldObject.spec.cancelled"
        " || (has(object.spec.cancelled) && object.spec.cancelled)"
    )
    assert len(POLICY["spec"]["validations"]) == len(SPEC["properties"])  # nothing else


@pytest.mark.parametrize(
    ("where", "rule", "message"),
    [
        ("", "has(self.image) != has(self.rootfs)", "exactly one of spec.image and spec.rootfs"),
        ("resultFile", "self.startsWith('/')", "spec.resultFile must be an absolute path"),
        ("completionCallbackUrl", "url(self).getScheme()", "spec.completionCallbackUrl must be"),
        ("annotation", "size(bytes(self)) <= 10240", "spec.annotation must be at most 10240"),
        ("rootfs", "docker://", "spec.rootfs must be a docker:// URL"),
    ],
)
def test_validation_rules_name_the_field(where: str, rule: str, message: str) -> None:
    schema = SPEC["properties"][where] if where else SPEC
    assert any(rule in r["rule"] and r["message"].startswith(message) for r in _rules(schema))


TASKTYPE_CRD = yaml.safe_load(
    (CRD_PATH.parent / "taskop.dev_tasktypes.yaml").read_text().split("---\n", 1)[1]
)
TASKTYPE_SPEC = TASKTYPE_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
    "spec"
]


def _undescribed(schema: Any) -> Any:
    """``schema`` without its descriptions."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "description":
                continue
            out[key] = _undescribed(value)
        return out
    if isinstance(schema, list):
        return [_undescribed(item) for item in schema]
    return schema


@pytest.mark.parametrize("field", ["image", "env", "resultFile", "timeoutSeconds", "podTemplate"])
def test_a_tasktype_field_is_the_tasks_own_schema(field: str) -> None:
    """What a TaskType passes on to its Tasks is validated at kubectl apply exactly as in a Task."""
    assert _undescribed(TASKTYPE_SPEC["properties"][field]) == _undescribed(
        SPEC["properties"][field]
    )


def test_the_tasktype_crd_and_model_have_the_same_fields() -> None:
    from pydantic.alias_generators import to_camel

    from taskop.glance.tasktypes import TaskTypeSpec

    assert set(TASKTYPE_SPEC["properties"]) == {to_camel(f) for f in TaskTypeSpec.model_fields}
