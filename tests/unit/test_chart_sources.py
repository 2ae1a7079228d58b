"""The chart and deploy/ are generated from one source each, document every value, and grant only
the API calls taskop makes (no cluster needed; helm is built once by hack/build-helm)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "taskop"


TLS = "bbs.tls.secretName=taskop-bbs-tls"


def render(helm: str, *sets: str, show_only: str | None = None) -> list[dict[str, Any]]:
    """The chart rendered with ``sets``; the BBS API's TLS Secret named unless they say."""
    if not any(s.startswith("bbs.") for s in sets):
        sets = (TLS, *sets)
    args = [helm, "template", "taskop", str(CHART), "--namespace", "taskop-system"]
    for s in sets:
        args += ["--set", s]
    if show_only:
        args += ["--show-only", show_only]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_chart_crds_are_copies_of_crds_dir() -> None:
    for src in sorted((ROOT / "crds").glob("*.yaml")):
        copy = CHART / "crds" / src.name
        assert copy.exists(), f"{copy} missing: run hack/gen-manifests"
        assert copy.read_text() == src.read_text(), f"{copy} drifted: run hack/gen-manifests"
    extra = {p.name for p in (CHART / "crds").glob("*.yaml")} - {
        p.name for p in (ROOT / "crds").glob("*.yaml")
    }
    assert extra == {"kopf.dev_peerings.yaml"}  # kopf's own CRDs, maintained in the chart


def test_generated_files_are_up_to_date(helm: str) -> None:
    """charts/taskop/crds and deploy/ are exactly what hack/gen-manifests makes now."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "gen-manifests"), "--check", "--helm", helm],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr


def test_helm_lint_passes_for_every_mode(helm: str) -> None:
    for sets in (
        [TLS],
        [TLS, "watchNamespace=team-a"],
        ["bbs.insecure=true", "replicaCount=2"],
        ["replicaCount=3", "watchNamespace=team-a", "bbs.tls.secretName=t"],
        [TLS, "kueue.enabled=true"],
        [TLS, "kueue.enabled=true", "watchNamespace=team-a"],
        [
            "bbs.enabled=false",
            "rbac.create=false",
            "serviceAccount.create=false",
            "serviceAccount.name=existing",
        ],
    ):
        args = [helm, "lint", "--strict", str(CHART)] + [f"--set={s}" for s in sets]
        proc = subprocess.run(args, capture_output=True, text=True)
        assert proc.returncode == 0, f"{sets}: {proc.stdout}{proc.stderr}"


def test_schema_rejects_bad_values(helm: str) -> None:
    for bad in (
        "replicaCount=-1",
        "logFormat=xml",
        "config.maxTaskRetries=-2",
        "unknown=1",
        "bbs.insecure=maybe",
        "bbs.tls.certManager.issuerKind=Vault",
        "watchNamespace=Not_A_Namespace",
        "kueue.enabled=maybe",
        "kueue.queueName=default",
    ):
        proc = subprocess.run(
            [helm, "template", "x", str(CHART), "--set", bad], capture_output=True, text=True
        )
        assert proc.returncode != 0, f"{bad} was accepted"


# Exactly what operator/taskop calls (kube/client.py, reconciler/handlers.py) and kopf needs.
OPERATOR_RULES = {
    ("taskop.dev", "tasks"): {"get", "list", "watch", "patch", "delete"},
    ("taskop.dev", "tasks/status"): {"patch", "update"},
    ("taskop.dev", "tasks/finalizers"): {"update"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "pods"): {"list", "watch"},
    ("", "pods/log"): {"get"},
    ("networking.k8s.io", "networkpolicies"): {"get", "create"},
    ("", "events"): {"create", "list", "watch"},
}
GLANCE_AUTH_RULES = {
    ("authentication.k8s.io", "tokenreviews"): {"create"},
    ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
}
CLUSTER_RULES = {
    ("", "nodes"): {"list", "watch"},  # node watch (handlers.py)
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},  # kopf
}


def grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    result: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                result.setdefault((group, resource), set()).update(rule["verbs"])
    return result


def roles(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"].endswith("Role")}


def test_cluster_wide_rbac_grants_exactly_what_taskop_calls(helm: str) -> None:
    got = roles(render(helm, show_only="templates/rbac.yaml"))
    assert set(got) == {
        ("ClusterRole", "taskop"),
        ("Role", "taskop-bbs"),
        ("ClusterRole", "taskop-glance-auth"),
    }
    assert grants(got["ClusterRole", "taskop"]) == OPERATOR_RULES | CLUSTER_RULES
    assert grants(got["Role", "taskop-bbs"]) == {
        ("taskop.dev", "tasks"): {"create"},
        ("taskop.dev", "tasktypes"): {"list", "watch"},
        ("", "configmaps"): {"create", "get", "update"},
        ("", "secrets"): {"create", "list", "watch"},  # list, watch: the BBS view's Secrets
    }
    assert grants(got["ClusterRole", "taskop-glance-auth"]) == GLANCE_AUTH_RULES
    named = [r for r in got["Role", "taskop-bbs"]["rules"] if "get" in r["verbs"]]
    assert named == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["taskop-bbs-domains"],
            "verbs": ["get", "update"],
        }
    ]
    # The Glance API alone watches its tasks' input Secrets (taskop.glance.view.Inputs) too.
    glance_only = roles(render(helm, TLS, "bbs.enabled=false", show_only="templates/rbac.yaml"))
    secrets = {"create", "list", "watch"}
    assert grants(glance_only["Role", "taskop-bbs"])[("", "secrets")] == secrets
    assert got["Role", "taskop-bbs"]["metadata"]["namespace"] == "taskop-system"


def test_one_namespace_rbac_is_a_role_there(helm: str) -> None:
    got = roles(render(helm, "watchNamespace=team-a", show_only="templates/rbac.yaml"))
    assert set(got) == {
        ("Role", "taskop"),
        ("ClusterRole", "taskop-cluster"),
        ("Role", "taskop-bbs"),
        ("ClusterRole", "taskop-glance-auth"),
    }
    assert got["Role", "taskop"]["metadata"]["namespace"] == "team-a"
    assert grants(got["Role", "taskop"]) == OPERATOR_RULES
    assert grants(got["ClusterRole", "taskop-cluster"]) == CLUSTER_RULES | {
        ("", "namespaces"): {"list", "watch"}
    }
    assert got["Role", "taskop-bbs"]["metadata"]["namespace"] == "team-a"


@pytest.mark.parametrize(
    ("sets", "kind", "plural"),
    [
        (["replicaCount=2"], "ClusterKopfPeering", "clusterkopfpeerings"),
        (["replicaCount=2", "watchNamespace=team-a"], "KopfPeering", "kopfpeerings"),
    ],
)
def test_replicas_use_kopf_peering(helm: str, sets: list[str], kind: str, plural: str) -> None:
    docs = render(helm, *sets)
    peerings = [d for d in docs if d["kind"] == kind]
    assert [p["metadata"]["name"] for p in peerings] == ["taskop"]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert "--peering=taskop" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    operator_role = next(
        d for d in docs if d["kind"].endswith("Role") and d["metadata"]["name"] == "taskop"
    )
    assert grants(operator_role)[("kopf.dev", plural)] == {"list", "watch", "patch"}


def test_one_replica_runs_standalone(helm: str) -> None:
    docs = render(helm)
    assert not [d for d in docs if "Peering" in d["kind"]]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert not any(a.startswith("--peering") for a in container["args"])
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_every_rbac_rule_is_commented() -> None:
    lines = (CHART / "templates" / "rbac.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("- apiGroups:"):
            above = lines[i - 1].strip()
            assert above.startswith("#") or (
                above.startswith("verbs:") and lines[i - 2].strip().startswith("resourceNames")
            ), f"templates/rbac.yaml:{i + 1}: rule without a comment saying its purpose"


FREE_FORM = {
    "resources",
    "livenessProbe",
    "readinessProbe",
    "podSecurityContext",
    "securityContext",
}


def test_every_value_is_documented_and_in_the_schema() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    schema = json.loads((CHART / "values.schema.json").read_text())
    path: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z][A-Za-z0-9]*):", line)
        if not m:
            continue
        indent, key = len(m.group(1)), m.group(2)
        path = [(n, k) for n, k in path if n < indent]
        parents = [k for _, k in path]
        path.append((indent, key))
        if FREE_FORM & set(parents):
            continue
        above = lines[i - 1].strip()
        following = [x for x in lines[i + 1 :] if x.strip() and not x.strip().startswith("#")]
        has_children = bool(following) and following[0].startswith(" " * (indent + 2))
        if not has_children:
            assert above.startswith("#"), f"values.yaml:{i + 1}: {key} has no comment"
        node = schema
        for k in [*parents, key]:
            node = node["properties"][k] if "properties" in node else node
            assert isinstance(node, dict), f"values.yaml:{i + 1}: {key} not in values.schema.json"


def test_deploy_equals_the_chart_defaults(helm: str) -> None:
    args = [
        helm,
        "template",
        "taskop",
        str(CHART),
        "--namespace",
        "taskop-system",
        "--include-crds",
        "--skip-tests",
        f"--set={TLS}",  # as hack/gen-manifests renders deploy/
    ]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    rendered = [d for d in yaml.safe_load_all(out) if d]
    deployed = [
        d
        for f in yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())["resources"]
        for d in yaml.safe_load_all((ROOT / "deploy" / f).read_text())
        if d
    ]

    def key(d: dict[str, Any]) -> tuple[str, str, str]:
        return (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])

    relabelled = {
        key(d): json.loads(
            json.dumps(d).replace(
                '"app.kubernetes.io/managed-by": "Helm"',
                '"app.kubernetes.io/managed-by": "kustomize"',
            )
        )
        for d in rendered
    }
    assert {key(d): d for d in deployed if d["kind"] != "Namespace"} == relabelled
    assert [key(d) for d in deployed if d["kind"] == "Namespace"] == [
        ("Namespace", "", "taskop-system")
    ]


# Each method of taskop.kube.client.Kube → the grant it needs. A new method fails the test below
# until it is added here and to templates/rbac.yaml.
BBS_ONLY = {
    "create_task",
    "delete_config_map",
    "get_config_map",
    "create_config_map",
    "replace_config_map",
    "create_secret",
}
KUBE_CALLS = {
    "get_task": ("taskop.dev", "tasks", "get"),
    "list_objects": ("taskop.dev", "tasks", "list"),  # and tasktypes (taskop-bbs), checked below
    "watch": ("batch", "jobs", "watch"),  # and tasks, pods, events: the informers, checked below
    "delete_config_map": ("", "configmaps", "delete"),  # taskstore intents (taskop-bbs)
    "review_token": ("authentication.k8s.io", "tokenreviews", "create"),  # taskop-glance-auth
    "review_access": ("authorization.k8s.io", "subjectaccessreviews", "create"),
    "create_task": ("taskop.dev", "tasks", "create"),  # BBS namespace only (Role taskop-bbs)
    "get_config_map": ("", "configmaps", "get"),  # the BBS domains' one ConfigMap (taskop-bbs)
    "create_config_map": ("", "configmaps", "create"),
    "replace_config_map": ("", "configmaps", "update"),
    "create_secret": ("", "secrets", "create"),  # a BBS task's image pull Secret (taskop-bbs)
    "patch_task": ("taskop.dev", "tasks", "patch"),
    "patch_task_status": ("taskop.dev", "tasks/status", "patch"),  # the BBS door, callbacks
    "replace_task_status": ("taskop.dev", "tasks/status", "update"),  # the reconciler
    "delete_task": ("taskop.dev", "tasks", "delete"),
    "get_job": ("batch", "jobs", "get"),
    "create_job": ("batch", "jobs", "create"),
    "delete_job": ("batch", "jobs", "delete"),
    "release_job": ("batch", "jobs", "patch"),
    "create_event": ("", "events", "create"),
    "list_pods": ("", "pods", "list"),
    "release_pod": ("", "pods", "patch"),  # Kueue's support only (kueue.enabled)
    "deactivate_workload": ("kueue.x-k8s.io", "workloads", "patch"),
    "read_pod_log": ("", "pods/log", "get"),  # the result sidecar's log
    "create_network_policy": ("networking.k8s.io", "networkpolicies", "create"),
    "get_network_policy": ("networking.k8s.io", "networkpolicies", "get"),
    "list_pages": ("taskop.dev", "tasks", "list"),  # and jobs, pods, events: resync, informers
}


def test_every_api_call_of_the_operator_is_granted(helm: str) -> None:
    """Reads operator/taskop: Kube's methods and kopf's watches, each granted by the chart."""
    source = (ROOT / "operator" / "taskop" / "kube" / "client.py").read_text()
    kube_class = source[source.index("class Kube:") :]
    methods = set(re.findall(r"^    async def ([a-z][a-z_]*)\(", kube_class, re.MULTILINE))
    assert methods - {"close"} == set(KUBE_CALLS), "new Kube method: grant it, then list it here"
    # Everything on: the calls of the optional doors and of Kueue's support too.
    docs = render(
        helm, "taskstore.enabled=true", "kueue.enabled=true", show_only="templates/rbac.yaml"
    )
    granted = grants(next(d for d in docs if d["kind"] == "ClusterRole"))
    granted_bbs = grants(next(d for d in docs if d["metadata"]["name"] == "taskop-bbs"))
    granted_auth = grants(next(d for d in docs if d["metadata"]["name"] == "taskop-glance-auth"))
    assert {"list", "watch"} <= granted_bbs[("taskop.dev", "tasktypes")], "the Glance API's types"
    assert {"list", "watch"} <= granted[("taskop.dev", "tasks")], "the APIs' views of the tasks"
    assert {"list", "watch"} <= granted_bbs[("", "secrets")], "the BBS view's definition Secrets"
    for method, (group, resource, verb) in KUBE_CALLS.items():
        where = granted_bbs if method in BBS_ONLY else granted
        where = granted_auth if method in ("review_token", "review_access") else where
        assert verb in where.get((group, resource), set()), f"Kube.{method}: {verb} {resource}"

    handlers = (ROOT / "operator" / "taskop" / "reconciler" / "handlers.py").read_text()
    watched = re.findall(r'kopf\.on\.event\(\s*"([^"]*)",\s*"[^"]*",\s*"([^"]*)"', handlers)
    watched += (
        [("taskop.dev", "tasks")] if "kopf.on.event(GROUP, VERSION, PLURAL" in handlers else []
    )
    assert len(watched) == handlers.count("@kopf.on.event("), "unparsed kopf.on.event"
    for group, plural in watched:
        assert {"list", "watch"} <= granted.get((group, plural), set()), f"kopf watches {plural}"

    controller = (ROOT / "operator" / "taskop" / "reconciler" / "controller.py").read_text()
    informed = re.findall(r'Stream\(\s*"([a-z]+)"', controller)
    assert sorted(informed) == ["events", "jobs", "nodes", "pods", "workloads"], "unparsed Stream"
    groups = {"jobs": "batch", "pods": "", "events": "", "nodes": "", "workloads": "kueue.x-k8s.io"}
    for plural in informed:
        grant = granted.get((groups[plural], plural), set())
        assert {"list", "watch"} <= grant, f"the informers watch {plural}"


KUEUE_RULES = {
    ("", "pods"): {"patch"},  # the release: the gate taskop.dev/release off one pod
    ("kueue.x-k8s.io", "workloads"): {"get", "list", "watch", "patch"},  # watch; deactivate
}


@pytest.mark.parametrize("scope", [[], ["watchNamespace=team-a"]], ids=["cluster-wide", "one-ns"])
def test_kueue_rbac_and_setting_only_when_enabled(helm: str, scope: list[str]) -> None:
    """kueue.enabled (default off) sets TASKOP_KUEUE_ENABLED and grants pods patch and Kueue's
    workloads to the operator's own (Cluster)Role — namespaced kinds, so a Role in the watched
    namespace, never the cluster-scoped reads' ClusterRole."""
    from taskop.settings import Settings

    operator_role = ("Role" if scope else "ClusterRole", "taskop")
    for enabled in (False, True):
        sets = [*scope, "kueue.enabled=true"] if enabled else scope
        docs = render(helm, *sets)
        got = roles(docs)
        expected = OPERATOR_RULES | ({} if scope else CLUSTER_RULES)
        if enabled:
            expected = expected | {
                k: OPERATOR_RULES.get(k, set()) | v for k, v in KUEUE_RULES.items()
            }
        assert grants(got[operator_role]) == expected, f"kueue.enabled={enabled}"
        others = [grants(r) for key, r in got.items() if key != operator_role]
        assert not [g for g in others if ("kueue.x-k8s.io", "workloads") in g]
        assert not [g for g in others if "patch" in g.get(("", "pods"), set())]
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        env = {
            e["name"]: e.get("value")
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["TASKOP_KUEUE_ENABLED"] == str(enabled).lower()
        assert Settings.from_env(env).kueue_enabled is enabled


def test_every_setting_is_a_chart_value(helm: str) -> None:
    """Each field of taskop.settings.Settings reaches the operator as TASKOP_<NAME>."""
    from dataclasses import fields

    from taskop.settings import Settings

    docs = render(helm, "bbs.tls.secretName=tls", "taskstore.enabled=true")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert set(env) == {f"TASKOP_{f.name.upper()}" for f in fields(Settings)}
    settings = Settings.from_env(env)  # every value parses as the operator reads it
    # An empty value stays empty ("not set"), never "0": a TTL of 0 would delete every Task.
    assert env["TASKOP_TTL_SECONDS_AFTER_FINISHED"] == ""
    assert (settings.bbs_listen_address, settings.bbs_namespace) == ("0.0.0.0", "taskop-system")
    assert settings.bbs_max_body_bytes == 1 << 20


def test_domain_profiles_are_a_mounted_file_the_operator_accepts(helm: str, tmp_path: Path) -> None:
    from taskop.settings import Settings

    docs = render(
        helm,
        "domainProfiles.cf-tasks.stacks.cflinuxfs4=busybox",
        "domainProfiles.cf-tasks.unenforceable=warn",
        "domainProfiles.cf-tasks.podTemplate.runtimeClassName=gvisor",
    )
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    assert config_map["metadata"]["name"] == "taskop-domain-profiles"
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "domain-profiles")
    assert env["TASKOP_DOMAIN_PROFILES_FILE"] == f"{mount['mountPath']}/profiles.yaml"
    assert "checksum/domain-profiles" in deployment["spec"]["template"]["metadata"]["annotations"]
    path = tmp_path / "profiles.yaml"
    path.write_text(config_map["data"]["profiles.yaml"])
    settings = Settings.from_env({"TASKOP_DOMAIN_PROFILES_FILE": str(path)})
    profile = settings.profiles.profile("cf-tasks")
    assert profile.stacks == {"cflinuxfs4": "busybox"}
    assert profile.unenforceable == "warn"
    assert profile.pod_template.runtime_class_name == "gvisor"


def test_the_bbs_api_needs_mutual_tls_unless_insecure_is_said(helm: str) -> None:
    proc = subprocess.run(
        [helm, "template", "x", str(CHART)], capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0
    assert "the BBS API needs mutual TLS: set bbs.tls.secretName" in proc.stderr
    assert "or set bbs.insecure=true for plain HTTP" in proc.stderr
    plain = render(helm, "bbs.insecure=true")
    deployment = next(d for d in plain if d["kind"] == "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert "TASKOP_BBS_TLS_CERT_FILE" not in env


def test_cert_manager_issues_the_bbs_certificate_when_asked(helm: str) -> None:
    sets = ["bbs.tls.certManager.issuerName=ca", "bbs.tls.certManager.issuerKind=ClusterIssuer"]
    args = [helm, "template", "taskop", str(CHART), "-n", "taskop-system"]
    args += [f"--set={s}" for s in sets]
    missing = subprocess.run(args, capture_output=True, text=True, check=False)
    assert "cert-manager (cert-manager.io/v1) is not installed" in missing.stderr
    out = subprocess.run(
        [*args, "--api-versions", "cert-manager.io/v1"], capture_output=True, text=True, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    certificate = next(d for d in docs if d["kind"] == "Certificate")
    assert certificate["spec"]["secretName"] == "taskop-bbs-tls"
    assert certificate["spec"]["issuerRef"] == {"name": "ca", "kind": "ClusterIssuer"}
    assert "taskop-bbs.taskop-system.svc" in certificate["spec"]["dnsNames"]
    assert "taskop-glance.taskop-system.svc" in certificate["spec"]["dnsNames"]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["bbs-tls"]["secret"]["secretName"] == "taskop-bbs-tls"


def test_tasks_roles_aggregate_into_the_clusters_view_edit_and_admin(helm: str) -> None:
    docs = render(helm, show_only="templates/user-roles.yaml")
    roles = {d["metadata"]["name"]: d for d in docs}
    view, edit = roles["taskop-tasks-view"], roles["taskop-tasks-edit"]
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    assert {k for k in view["metadata"]["labels"] if k.startswith(aggregate)} == {
        f"{aggregate}view",
        f"{aggregate}edit",
        f"{aggregate}admin",
    }
    assert {k for k in edit["metadata"]["labels"] if k.startswith(aggregate)} == {
        f"{aggregate}edit",
        f"{aggregate}admin",
    }
    assert view["rules"] == [
        {
            "apiGroups": ["taskop.dev"],
            "resources": ["tasks", "tasks/status", "tasktypes"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    assert [{**r, "verbs": set(r["verbs"])} for r in edit["rules"]] == [
        {"apiGroups": ["taskop.dev"], "resources": ["tasks"], "verbs": writes}
    ]
    # What Glance tasks run (image, command, pod template) is the namespace admins' to define.
    types = roles["taskop-tasktypes-admin"]
    assert {k for k in types["metadata"]["labels"] if k.startswith(aggregate)} == {
        f"{aggregate}admin"
    }
    assert [{**r, "verbs": set(r["verbs"])} for r in types["rules"]] == [
        {"apiGroups": ["taskop.dev"], "resources": ["tasktypes"], "verbs": writes}
    ]


def test_metrics_are_served_annotated_and_monitored_when_asked(helm: str) -> None:
    docs = render(helm)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "9102"
    container = template["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["TASKOP_METRICS_LISTEN_ADDRESS"], env["TASKOP_METRICS_PORT"]) == ("0.0.0.0", "9102")
    assert {"name": "metrics", "containerPort": 9102, "protocol": "TCP"} in container["ports"]
    args = [helm, "template", "taskop", str(CHART), f"--set={TLS}"]
    monitored = [*args, "--set=metrics.serviceMonitor.enabled=true"]
    missing = subprocess.run(monitored, capture_output=True, text=True, check=False)
    assert "needs the Prometheus Operator's ServiceMonitor CRD" in missing.stderr
    out = subprocess.run(
        [*monitored, "--api-versions", "monitoring.coreos.com/v1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kinds = {d["kind"]: d for d in yaml.safe_load_all(out) if d}
    assert kinds["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == "metrics"
