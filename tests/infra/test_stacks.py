"""dev, staging and prod under Pulumi mocks: what each stack would ask Kubernetes for (issue 3, Tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pulumi.runtime.rpc import is_rpc_secret

from infra import mocked_run
from infra.components.database import CNPG_API_VERSION
from infra.mocked_run import ProgramRun
from tests.infra.support import LEAK_MARKER, MOCK_PASSWORD_PREFIX, container, pod_spec, settings_config_map

ROOT = Path(__file__).resolve().parents[2]
MONITORED = {"dev": False, "staging": True, "prod": True}  # monitoring.enabled per stack (issue 11)
DIGEST_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")

# Issue 3's table of environments.
EXPECTED: dict[str, dict[str, Any]] = {
    "dev": {"replicas": 1, "hpa": (1, 3), "pg_instances": 1, "pdb": None, "auth": False},
    "staging": {"replicas": 2, "hpa": (2, 6), "pg_instances": 1, "pdb": None, "auth": True},
    "prod": {"replicas": 3, "hpa": (3, 20), "pg_instances": 3, "pdb": 2, "auth": True},
}


def documented_routes() -> dict[str, str]:
    """GET routes and their role, read from the contract (docs/architecture.md, "Routes:")."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    routes = re.search(r"^- Routes:(.*?)(?=^- )", text, re.S | re.M)
    assert routes, "docs/architecture.md lost its Routes: list"
    found = re.findall(r"`GET (/[a-z]*)[^`]*`(?: \((\w+))?", routes.group(1))
    return {path: role for path, role in found}


def dockerfile_cmd() -> list[str]:
    match = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    assert match
    cmd: list[str] = json.loads(match.group(1))
    return cmd


def expected(run: ProgramRun) -> dict[str, Any]:
    return EXPECTED[run.stack]


def config_data(run: ProgramRun) -> dict[str, str]:
    data: dict[str, str] = settings_config_map(run).inputs["data"]
    return data


# --- image ---------------------------------------------------------------------------------------


def test_image_is_pinned_by_digest_and_exported(stack_run: ProgramRun) -> None:
    image = container(stack_run)["image"]
    assert DIGEST_REF.match(image), image
    assert stack_run.exports["imageRef"].value == image
    build = stack_run.one("Image").inputs
    assert build["imageName"] == f"registry.example.com/modelship:{stack_run.exports['modelVersion'].value}"
    assert build["build"]["args"]["MODEL_DIR"] == f"artifacts/{stack_run.exports['modelVersion'].value}"


def test_pod_labels_carry_the_model_version(stack_run: ProgramRun) -> None:
    labels = stack_run.one("Deployment").inputs["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == stack_run.exports["modelVersion"].value


# --- probes, port, shutdown ------------------------------------------------------------------------


def test_probes_hit_documented_routes_on_the_service_port(stack_run: ProgramRun) -> None:
    routes = documented_routes()
    c = container(stack_run)
    port = dockerfile_cmd()[dockerfile_cmd().index("--port") + 1]
    assert [p["containerPort"] for p in c["ports"]] == [int(port)] == [8000]
    assert routes[c["readinessProbe"]["httpGet"]["path"]] == "readiness"
    assert routes[c["livenessProbe"]["httpGet"]["path"]] == "liveness"
    assert routes[c["startupProbe"]["httpGet"]["path"]] == "liveness"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] == 8000


def test_termination_grace_covers_prestop_and_uvicorn_shutdown(stack_run: ProgramRun) -> None:
    cmd = dockerfile_cmd()
    uvicorn_grace = int(cmd[cmd.index("--timeout-graceful-shutdown") + 1])
    assert config_data(stack_run)["MODELSHIP_SHUTDOWN_GRACE_S"] == str(uvicorn_grace) == "20"
    pre_stop = container(stack_run)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod_spec(stack_run)["terminationGracePeriodSeconds"] > int(pre_stop[1]) + uvicorn_grace


def test_rolling_update_never_drops_below_desired(stack_run: ProgramRun) -> None:
    strategy = stack_run.one("Deployment").inputs["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_prometheus_scrapes_metrics_route(stack_run: ProgramRun) -> None:
    annotations = stack_run.one("Deployment").inputs["spec"]["template"]["metadata"]["annotations"]
    assert "/metrics" in documented_routes()
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == "8000"


def test_pods_spread_across_nodes(stack_run: ProgramRun) -> None:
    keys = {t["topologyKey"] for t in pod_spec(stack_run)["topologySpreadConstraints"]}
    assert "kubernetes.io/hostname" in keys


# --- resources and Pod Security "restricted" -----------------------------------------------------


def test_requests_and_limits_are_set(stack_run: ProgramRun) -> None:
    resources = container(stack_run)["resources"]
    for section in ("requests", "limits"):
        assert set(resources[section]) >= {"cpu", "memory"}, section
        assert all(resources[section][k] for k in ("cpu", "memory"))


def test_every_restricted_pod_security_field(stack_run: ProgramRun) -> None:
    pod = pod_spec(stack_run)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    ctx = container(stack_run)["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == 10001
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["privileged"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx["readOnlyRootFilesystem"] is True


def test_only_tmp_and_the_spool_are_writable(stack_run: ProgramRun) -> None:
    pod = pod_spec(stack_run)
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert empty_dirs == {"tmp", "spool"}
    assert not [v for v in pod["volumes"] if "hostPath" in v or "persistentVolumeClaim" in v]
    writable = {m["mountPath"] for m in container(stack_run)["volumeMounts"] if m["name"] in empty_dirs}
    assert writable == {"/tmp", "/var/spool/modelship"}
    assert config_data(stack_run)["MODELSHIP_SPOOL_DIR"] == "/var/spool/modelship"
    assert all(m.get("readOnly") is True for m in container(stack_run)["volumeMounts"] if m["name"] not in empty_dirs)


def test_service_account_has_no_token(stack_run: ProgramRun) -> None:
    account = stack_run.one("ServiceAccount").inputs
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(stack_run)["serviceAccountName"] == account["metadata"]["name"]


def test_created_namespace_enforces_restricted(stack_run: ProgramRun) -> None:
    namespace = stack_run.one("Namespace").inputs["metadata"]
    assert namespace["name"] == stack_run.exports["namespace"].value == f"modelship-{stack_run.stack}"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --- scaling and disruption ----------------------------------------------------------------------


def test_hpa_targets_the_deployment_with_the_stack_bounds(stack_run: ProgramRun) -> None:
    hpa = stack_run.one("HorizontalPodAutoscaler").inputs
    deployment = stack_run.one("Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment.inputs["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == expected(stack_run)["hpa"]
    cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert cpu[0]["resource"]["name"] == "cpu"
    assert deployment.inputs["spec"]["replicas"] == expected(stack_run)["replicas"]
    # Pulumi must not fight the HPA over the replica count.
    assert deployment.ignore_changes == ("spec.replicas",)


def test_pdb_only_in_prod(stack_run: ProgramRun) -> None:
    pdbs = stack_run.of_kind("PodDisruptionBudget")
    if expected(stack_run)["pdb"] is None:
        assert pdbs == []
        return
    (pdb,) = pdbs
    assert pdb.inputs["spec"]["minAvailable"] == expected(stack_run)["pdb"]
    deployment = stack_run.one("Deployment").inputs
    assert pdb.inputs["spec"]["selector"] == deployment["spec"]["selector"]


def test_service_is_cluster_internal_by_default(stack_run: ProgramRun) -> None:
    service = stack_run.one("Service").inputs["spec"]
    assert service["type"] == "ClusterIP"
    assert service["selector"] == stack_run.one("Deployment").inputs["spec"]["selector"]["matchLabels"]
    assert [p["targetPort"] for p in service["ports"]] == ["http"]
    assert stack_run.exports["serviceUrl"].value.startswith(f"http://modelship.modelship-{stack_run.stack}.svc")


# --- Postgres ------------------------------------------------------------------------------------


def test_postgres_is_a_cnpg_cluster_on_persistent_volumes(stack_run: ProgramRun) -> None:
    cluster = stack_run.one("Cluster")
    assert cluster.type == f"kubernetes:{CNPG_API_VERSION}:Cluster"
    spec = cluster.inputs["spec"]
    assert spec["instances"] == expected(stack_run)["pg_instances"]
    assert spec["storage"]["size"]
    assert spec["bootstrap"]["initdb"]["secret"]["name"] in {
        s.inputs["metadata"]["name"] for s in stack_run.of_kind("Secret")
    }
    assert "emptyDir" not in json.dumps(spec)
    # never a bare Postgres Deployment or StatefulSet
    assert [d.name for d in stack_run.of_kind("Deployment")] == ["modelship-deployment"]
    assert stack_run.of_kind("StatefulSet") == []
    (release,) = [r.inputs for r in stack_run.of_kind("Release") if r.inputs["chart"] == "cloudnative-pg"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", release["version"])


def test_database_host_export_points_at_the_primary(stack_run: ProgramRun) -> None:
    name = stack_run.one("Cluster").inputs["metadata"]["name"]
    host = stack_run.exports["databaseHost"]
    assert host.value == f"{name}-rw.modelship-{stack_run.stack}.svc.cluster.local"
    assert host.secret is False


def test_network_policies_isolate_postgres(stack_run: ProgramRun) -> None:
    policies = {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in stack_run.of_kind("NetworkPolicy")}
    service_pods = stack_run.one("Deployment").inputs["spec"]["selector"]["matchLabels"]
    cluster = stack_run.one("Cluster").inputs["metadata"]["name"]
    (db,) = [p for p in policies.values() if p["podSelector"]["matchLabels"] == {"cnpg.io/cluster": cluster}]
    assert db["policyTypes"] == ["Ingress"]
    allowed_on_5432 = []
    for rule in db["ingress"]:
        assert rule.get("from"), "a rule without `from` admits every pod in the cluster"
        for peer in rule["from"]:
            assert "ipBlock" not in peer
        if 5432 in [p["port"] for p in rule["ports"]]:
            allowed_on_5432 += [peer for peer in rule["from"]]
    # clients: the service's pods and the retention job's; besides them only the cluster's own instances
    retention_pods = {"app.kubernetes.io/name": "modelship-retention", "app.kubernetes.io/instance": "modelship"}
    assert allowed_on_5432 == [
        {"podSelector": {"matchLabels": service_pods}},
        {"podSelector": {"matchLabels": retention_pods}},
        {"podSelector": {"matchLabels": {"cnpg.io/cluster": cluster}}},
    ]
    # ...and that selector does admit the job's pods
    job_pods = stack_run.one("CronJob").inputs["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert retention_pods.items() <= job_pods.items()


def test_service_accepts_traffic_only_on_its_port(stack_run: ProgramRun) -> None:
    service_pods = stack_run.one("Deployment").inputs["spec"]["selector"]["matchLabels"]
    policies = [
        p.inputs["spec"]
        for p in stack_run.of_kind("NetworkPolicy")
        if p.inputs["spec"]["podSelector"]["matchLabels"] == service_pods
    ]
    assert len(policies) == (2 if MONITORED[stack_run.stack] else 1)  # the scraper's policy adds no port
    for policy in policies:
        assert policy["policyTypes"] == ["Ingress"]
        assert [r["ports"] for r in policy["ingress"]] == [[{"port": 8000, "protocol": "TCP"}]]


# --- settings and secrets --------------------------------------------------------------------------


def test_settings_come_from_a_config_map_and_a_secret(stack_run: ProgramRun) -> None:
    c = container(stack_run)
    assert "env" not in c, "settings travel in envFrom, never as literal env values"
    refs = {next(iter(e)): next(iter(e.values()))["name"] for e in c["envFrom"]}
    assert refs["configMapRef"] == settings_config_map(stack_run).inputs["metadata"]["name"]
    secret = [s for s in stack_run.of_kind("Secret") if s.inputs["metadata"]["name"] == refs["secretRef"]]
    assert set(mocked_run.masked(secret[0].inputs["stringData"])) == {"DATABASE_URL"}


def test_api_keys_only_where_auth_is_required(stack_run: ProgramRun) -> None:
    mounts = {m["mountPath"] for m in container(stack_run)["volumeMounts"]}
    keys_file = config_data(stack_run).get("MODELSHIP_API_KEYS_FILE")
    if not expected(stack_run)["auth"]:
        assert keys_file is None
        assert "api-keys" not in {v["name"] for v in pod_spec(stack_run)["volumes"]}
        return
    assert keys_file is not None
    assert str(Path(keys_file).parent) in mounts
    (volume,) = [v for v in pod_spec(stack_run)["volumes"] if v["name"] == "api-keys"]
    secret_names = {s.inputs["metadata"]["name"] for s in stack_run.of_kind("Secret")}
    assert volume["secret"]["secretName"] in secret_names


def test_no_plaintext_secret_in_any_input_or_export(stack_run: ProgramRun) -> None:
    leaks = [
        (r.type, r.name, s)
        for r in stack_run.resources
        for s in mocked_run.plaintext_strings(r.inputs)
        if LEAK_MARKER in s or MOCK_PASSWORD_PREFIX in s
    ]
    assert leaks == []
    for name, export in stack_run.exports.items():
        if LEAK_MARKER in json.dumps(export.value) or MOCK_PASSWORD_PREFIX in json.dumps(export.value):
            assert export.secret, f"export {name} carries a credential in the clear"
    assert stack_run.exports["databaseUrl"].secret is True
    # every Secret's payload is a Pulumi secret as a whole
    for secret in stack_run.of_kind("Secret"):
        assert is_rpc_secret(secret.inputs["stringData"]), secret.name


def test_secrets_are_really_delivered(stack_run: ProgramRun) -> None:
    """The other half of the leak test: the sentinels do reach the Secrets, as secrets."""
    settings = [s for s in stack_run.of_kind("Secret") if "DATABASE_URL" in s.inputs["stringData"]["value"]]
    url = settings[0].inputs["stringData"]["value"]["DATABASE_URL"]
    assert url.startswith("postgresql://modelship:" + MOCK_PASSWORD_PREFIX)
    api_keys = [s for s in stack_run.of_kind("Secret") if "keys" in s.inputs["stringData"]["value"]]
    assert len(api_keys) == (1 if expected(stack_run)["auth"] else 0)


def test_nothing_gpu_when_the_pool_is_off(stack_run: ProgramRun) -> None:
    everything = json.dumps([r.inputs for r in stack_run.resources])
    assert "nvidia.com/gpu" not in everything
    assert "tolerations" not in pod_spec(stack_run)
    assert "nodeSelector" not in pod_spec(stack_run)
    assert [r for r in stack_run.resources if r.type.startswith("gcp:")] == []
    assert "BASE_IMAGE" not in stack_run.one("Image").inputs["build"]["args"]


def test_exports_for_the_pipelines(stack_run: ProgramRun) -> None:
    assert set(stack_run.exports) == {
        "serviceUrl",
        "externalAddress",
        "imageRef",
        "modelVersion",
        "databaseHost",
        "databaseUrl",
        "namespace",
    }
    assert stack_run.exports["externalAddress"].value == ""  # ClusterIP: nothing outside the cluster


def test_every_resource_belongs_to_a_component(stack_run: ProgramRun) -> None:
    monitoring = {"modelship:index:Monitoring"} if MONITORED[stack_run.stack] else set()
    components = {r.type for r in stack_run.resources if not r.custom}
    assert (
        components
        == {"modelship:index:ModelImage", "modelship:index:ModelService", "modelship:index:Database"} | monitoring
    )
    top_level = {r.type for r in stack_run.resources if r.parent_type == "pulumi:pulumi:Stack"}
    assert top_level == {"modelship:index:ModelImage", "modelship:index:ModelService"} | monitoring
    for r in stack_run.resources:
        assert r.parent_type, r.name
        assert r.name.startswith("modelship"), f"{r.name}: children are named after their component"
    assert stack_run.one("Cluster").parent_type == "modelship:index:Database"
