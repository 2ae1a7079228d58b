"""DesireTask → Task object: Job-run domains map losslessly or refuse; external ones keep all."""

from __future__ import annotations

import base64
import json

import pytest

from taskop.bbs import models
from taskop.bbs.convert import (
    DEFINITION_ANNOTATION,
    DEFINITION_SECRET_ANNOTATION,
    DEFINITION_SECRET_LABEL,
    definition_bytes,
    definition_secret,
    parse_definition,
    resource_to_task,
)
from taskop.bbs.desire import EXTERNAL_PATH, build_task
from taskop.domain.errors import BBSError, ErrorType
from taskop.domain.spec import parse_spec


def run(**kwargs: object) -> models.Action:
    return models.Action(run_action=models.RunAction(path="sh", user="root", **kwargs))  # type: ignore[arg-type]


def request(td: models.TaskDefinition, guid: str = "Guid_1") -> models.DesireTaskRequest:
    return models.DesireTaskRequest(task_guid=guid, domain="d", task_definition=td)


def test_job_run_task() -> None:
    td = models.TaskDefinition(root_fs="docker:///busybox", action=run(args=["-c", "x"]))
    body = build_task(request(td), external=False, annotations={"kwok.taskop.dev/x": "y"})
    assert body["metadata"]["name"].startswith("guid-1--")
    assert body["metadata"]["annotations"] == {"kwok.taskop.dev/x": "y"}
    spec = body["spec"]
    assert spec["guid"] == "Guid_1" and spec["domain"] == "d" and "external" not in spec
    assert parse_spec(spec).action.run.args == ["-c", "x"]


def test_job_run_task_refuses_what_it_cannot_honour() -> None:
    td = models.TaskDefinition(
        root_fs="docker:///busybox",
        action=run(),
        volume_mounts=[models.VolumeMount(driver="nfs")],
    )
    with pytest.raises(BBSError) as info:
        build_task(request(td), external=False)
    assert info.value.type is ErrorType.InvalidRequest
    assert "volume_mounts" in info.value.message


def test_an_icmp_egress_rule_is_refused_naming_it() -> None:
    icmp = models.SecurityGroupRule(
        protocol="icmp", destinations=["10.0.0.0/8"], icmp_info=models.ICMPInfo(type=8, code=0)
    )
    allowed = models.SecurityGroupRule(protocol="all", destinations=["0.0.0.0/0"])
    td = models.TaskDefinition(
        root_fs="docker:///busybox", action=run(), egress_rules=[allowed, icmp]
    )
    with pytest.raises(BBSError) as info:
        build_task(request(td), external=False)
    assert info.value.type is ErrorType.InvalidRequest
    assert info.value.message == (
        "spec.egressRules[1]: icmp type 8 code 0 has no Kubernetes NetworkPolicy form"
        " (NetworkPolicy allows only TCP, UDP and SCTP) (this domain runs tasks as Kubernetes Jobs)"
    )


def test_job_run_task_refuses_an_invalid_spec() -> None:
    td = models.TaskDefinition(root_fs="docker:///busybox", action=run(), result_file="relative")
    with pytest.raises(BBSError) as info:
        build_task(request(td), external=False)
    assert "spec.resultFile" in info.value.message


@pytest.mark.parametrize(
    "td",
    [
        models.TaskDefinition(root_fs="docker:///busybox", action=run(dir="/tmp")),
        models.TaskDefinition(
            root_fs="preloaded:cflinuxfs4",
            action=models.Action(
                download_action=models.DownloadAction(to="/t", user="vcap", **{"from": "http://x"})
            ),
            result_file="relative",
            completion_callback_url="not a url",
            placement_tags=["not a tag!"],
            egress_rules=[models.SecurityGroupRule(protocol="all", destinations=["1.2.3.4"])],
        ),
    ],
)
def test_external_task_keeps_the_whole_definition(td: models.TaskDefinition) -> None:
    body = build_task(request(td), external=True)
    spec = parse_spec(body["spec"])  # always a valid spec
    assert spec.external
    secret = definition_secret(td, body["metadata"]["name"])
    assert body["metadata"]["annotations"] == {
        DEFINITION_SECRET_ANNOTATION: secret["metadata"]["name"]
    }
    assert secret["metadata"]["labels"] == {DEFINITION_SECRET_LABEL: "true"}
    data = definition_bytes(secret)
    assert data is not None
    stored = parse_definition(data)
    obj = {**body, "metadata": {**body["metadata"], "creationTimestamp": "2026-01-01T00:00:00Z"}}
    assert resource_to_task(obj, stored).task_definition == td


def test_an_external_task_holds_no_secret_only_its_definition_secret_does() -> None:
    password, content, services = "s3cret-pw", "db-s3cret", '{"db":[{"credentials":"x-s3cret"}]}'
    env = [models.EnvironmentVariable(name="VCAP_SERVICES", value=services)]
    td = models.TaskDefinition(
        root_fs="docker://registry.example.com/team/app",
        action=run(env=env),
        environment_variables=env,
        image_username="robot",
        image_password=password,
        volume_mounted_files=[models.File(path="/db/password", content=content)],
    )
    body = build_task(request(td), external=True)
    readable = json.dumps(body)  # what a `view` user reads: metadata and spec
    for secret_value in (password, content, services, "x-s3cret", "robot"):
        assert secret_value not in readable
    assert DEFINITION_ANNOTATION not in body["metadata"]["annotations"]
    assert "env" not in body["spec"] and "env" not in body["spec"]["action"]["run"]
    secret = definition_secret(td, body["metadata"]["name"])
    data = base64.standard_b64decode(secret["data"]["task-definition"])
    assert models.TaskDefinition.FromString(data) == td


def test_external_summary_of_an_unmappable_definition() -> None:
    td = models.TaskDefinition(
        root_fs="preloaded:cflinuxfs4",
        action=models.Action(
            download_action=models.DownloadAction(to="/t", user="vcap", **{"from": "http://x"})
        ),
        result_file="relative",
    )
    spec = build_task(request(td), external=True)["spec"]
    assert spec["rootfs"] == "preloaded:cflinuxfs4"
    assert spec["action"] == {"run": {"path": EXTERNAL_PATH}}
    assert "resultFile" not in spec
