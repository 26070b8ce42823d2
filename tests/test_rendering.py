"""Inventory drives the manifests: changing a knob changes exactly what it should."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from infra import COLLECTION, MANIFESTS, REPO, load_documents, render

from sentiment_service.api import create_app

KIND_SCHEMA = json.loads((COLLECTION / "molecule" / "kind-cluster-v1alpha4.json").read_text())


def render_with(tmp_path: Path, overrides: dict) -> Path:
    """The platform rendered with these variables over the default inventory, into tmp_path/out."""
    extra = tmp_path / "overrides.yml"
    extra.write_text(yaml.safe_dump(overrides))
    render(tmp_path / "out", extra)
    return tmp_path / "out"


def changed_files(left: Path, right: Path) -> set[str]:
    names = {p.relative_to(left).as_posix() for p in left.rglob("*.yaml")}
    names |= {p.relative_to(right).as_posix() for p in right.rglob("*.yaml")}
    return {
        n
        for n in names
        if not (left / n).exists() or not (right / n).exists() or (left / n).read_text() != (right / n).read_text()
    }


@pytest.fixture(scope="module")
def rerendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("render")
    overrides = tmp / "overrides.yml"
    overrides.write_text(
        yaml.safe_dump({"kind_cluster_workers": 3, "sentiment_app_hpa_target_rps": 77, "sentiment_app_replicas_max": 8})
    )
    out = tmp / "manifests"
    render(out, overrides)
    return out


@pytest.mark.slow
def test_changing_workers_and_hpa_target_changes_only_those_manifests(rerendered: Path) -> None:
    expected = {"kind_cluster/kind-config.yaml", "sentiment_app/40-autoscaling.yaml"}
    assert changed_files(MANIFESTS, rerendered) == expected
    kind_config = yaml.safe_load((rerendered / "kind_cluster" / "kind-config.yaml").read_text())
    assert [n["role"] for n in kind_config["nodes"]] == ["control-plane", "worker", "worker", "worker"]
    # Still one simulated GPU node: the last worker.
    assert ["labels" in n for n in kind_config["nodes"][1:]] == [False, False, True]
    hpa = next(d for d in load_documents(rerendered / "sentiment_app") if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "77"
    assert hpa["spec"]["maxReplicas"] == 8


@pytest.mark.slow
def test_the_transformer_variant_brings_its_own_hpa_target_and_resources(tmp_path: Path) -> None:
    overrides = tmp_path / "minilm.yml"
    overrides.write_text(yaml.safe_dump({"sentiment_app_model": "minilm"}))
    out = tmp_path / "manifests"
    render(out, overrides)
    assert changed_files(MANIFESTS, out) == {"sentiment_app/20-deployment.yaml", "sentiment_app/40-autoscaling.yaml"}
    profile = yaml.safe_load((COLLECTION / "roles" / "sentiment_app" / "defaults" / "main.yml").read_text())[
        "sentiment_app_model_profiles"
    ]["minilm"]
    documents = load_documents(out / "sentiment_app")
    hpa = next(d for d in documents if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == str(profile["hpa_target_rps"])
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == profile["resources"]
    # Another image (another variant, another tag), and the model threads follow the CPU limit.
    assert (
        container["image"]
        != next(d for d in load_documents(MANIFESTS / "sentiment_app") if d["kind"] == "Deployment")["spec"][
            "template"
        ]["spec"]["containers"][0]["image"]
    )
    threads = next(e for e in container["env"] if e["name"] == "SENTIMENT_MODEL_THREADS")
    assert threads["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"


@pytest.mark.slow
def test_real_gpus_request_the_device_and_score_on_cuda(tmp_path: Path) -> None:
    overrides = tmp_path / "gpu.yml"
    gpu = {"sentiment_app_gpu_scheduling": "required", "sentiment_app_gpu_count": 1}
    overrides.write_text(yaml.safe_dump({"sentiment_app_model": "minilm", **gpu}))
    out = tmp_path / "manifests"
    render(out, overrides)
    deployment = next(d for d in load_documents(out / "sentiment_app") if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "SENTIMENT_MODEL_DEVICE", "value": "cuda"} in container["env"]
    assert pod["nodeSelector"]  # GPU nodes only

    tfidf_on_gpu = tmp_path / "tfidf-gpu.yml"
    tfidf_on_gpu.write_text(yaml.safe_dump(gpu))
    with pytest.raises(AssertionError, match="only for the minilm model"):
        render(tmp_path / "refused", tfidf_on_gpu)


@pytest.mark.slow
def test_registry_mirrors_reach_the_node_config(tmp_path: Path) -> None:
    overrides = tmp_path / "mirrors.yml"
    overrides.write_text(
        yaml.safe_dump(
            {
                "kind_cluster_registry_mirrors": [
                    {"registry": "docker.io", "endpoint": "https://harbor.example.com/v2/dockerhub-proxy"},
                    {"registry": "quay.io", "endpoint": "http://mirror.internal:5000"},
                ]
            }
        )
    )
    render(tmp_path / "out", overrides)
    kind_config = yaml.safe_load((tmp_path / "out" / "kind_cluster" / "kind-config.yaml").read_text())
    jsonschema.validate(kind_config, KIND_SCHEMA)
    assert kind_config["containerdConfigPatches"] == [
        '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"'
    ]


@pytest.mark.slow
def test_existing_cluster_with_a_registry_renders_no_kind_config(tmp_path: Path) -> None:
    overrides = tmp_path / "existing.yml"
    overrides.write_text(
        yaml.safe_dump({"kind_cluster_enabled": False, "sentiment_app_image_registry": "registry.example.com/ml"})
    )
    render(tmp_path / "out", overrides)
    assert not (tmp_path / "out" / "kind_cluster" / "kind-config.yaml").exists()
    deployment = next(d for d in load_documents(tmp_path / "out" / "sentiment_app") if d["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"registry\.example\.com/ml/sentiment-service:[0-9a-f]{12}", image), image
    # A shared cluster keeps its default IngressClass, and any node's port reaches Traefik.
    ingress = load_documents(tmp_path / "out" / "ingress")
    ingress_class = next(d for d in ingress if d["kind"] == "IngressClass")
    assert "ingressclass.kubernetes.io/is-default-class" not in ingress_class["metadata"].get("annotations", {})
    service = next(d for d in ingress if d["kind"] == "Service")
    assert service["spec"]["externalTrafficPolicy"] == "Cluster"


def crd_schemas() -> dict[tuple[str, str], dict]:
    """openAPIV3Schema of every served version of the Gateway API and Flagger CRDs, from the pinned module
    sources (airgap/stage-crds.sh stages them from the Go module proxy)."""
    staged = subprocess.run([str(REPO / "airgap" / "stage-crds.sh")], capture_output=True, text=True, check=True)
    schemas = {}
    for path in Path(staged.stdout.strip()).glob("*.yaml"):
        for crd in yaml.safe_load_all(path.read_text()):
            if crd and crd["kind"] == "CustomResourceDefinition":
                for version in crd["spec"]["versions"]:
                    api_version = f"{crd['spec']['group']}/{version['name']}"
                    schemas[(api_version, crd["spec"]["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


def closed(schema: dict) -> dict:
    """The schema with additionalProperties false wherever properties are listed: the API server prunes
    unknown fields silently, so a misspelt field would otherwise pass."""
    schema = dict(schema)
    # Go's regexp takes inline flags anywhere, Python's only at the start (the Prometheus Operator's "^(?i)...").
    if schema.get("pattern", "").startswith("^(?i)"):
        schema["pattern"] = "(?i)^" + schema["pattern"][len("^(?i)") :]
    if "properties" in schema:
        schema["properties"] = {k: closed(v) for k, v in schema["properties"].items()}
        schema.setdefault("additionalProperties", False)
    if "items" in schema:
        schema["items"] = closed(schema["items"])
    return schema


@pytest.mark.slow
def test_switching_the_canary_on_hands_the_route_to_flagger(tmp_path: Path) -> None:
    overrides = tmp_path / "canary.yml"
    overrides.write_text(yaml.safe_dump({"platform_canary_enabled": True}))
    out = tmp_path / "manifests"
    render(out, overrides)
    assert changed_files(MANIFESTS, out) - {f"canary/{p.name}" for p in (out / "canary").glob("*.yaml")} == {
        "ingress/10-rbac.yaml",
        "ingress/30-deployment.yaml",
        "ingress/60-gateway.yaml",
        "sentiment_app/30-service.yaml",
        "sentiment_app/40-autoscaling.yaml",
        "sentiment_app/50-network-policy.yaml",
    }
    app = load_documents(out / "sentiment_app")
    # Flagger writes the Services and the HTTPRoute; the PDB and the policy cover its primary's pods.
    assert not [d for d in app if d["kind"] in ("Service", "Ingress")]
    pdb = next(d for d in app if d["kind"] == "PodDisruptionBudget")
    selector = pdb["spec"]["selector"]["matchExpressions"][0]
    assert selector["values"] == ["sentiment-service", "sentiment-service-primary"]
    traefik = next(d for d in load_documents(out / "ingress") if d["kind"] == "Deployment")
    assert "--providers.kubernetesgateway=true" in traefik["spec"]["template"]["spec"]["containers"][0]["args"]
    canary = next(d for d in load_documents(out / "canary") if d["kind"] == "Canary")
    assert canary["spec"]["service"]["hosts"] == ["sentiment.localhost"]
    assert canary["spec"]["service"]["gatewayRefs"] == [{"name": "traefik", "namespace": "ingress"}]

    assert_owned(load_documents(out))
    assert_uninstall_finds_everything(load_documents(out))

    schemas = crd_schemas()
    custom = [d for d in load_documents(out) if (d["apiVersion"], d["kind"]) in schemas]
    assert sorted({d["kind"] for d in custom}) == ["Canary", "Gateway", "GatewayClass", "MetricTemplate"]
    for document in custom:
        jsonschema.validate(document, closed(schemas[(document["apiVersion"], document["kind"])]))


OWNERSHIP = {"app.kubernetes.io/managed-by": "sentiment-platform", "app.kubernetes.io/instance": "sentiment"}


def assert_owned(documents: list[dict]) -> None:
    """Every object carries the ownership labels (teardown.yml deletes by them, the ownership check reads
    them), and so does every pod a workload makes; every Ingress names its class."""
    for document in documents:
        if document.get("apiVersion", "").startswith("kind.x-k8s.io"):
            continue
        ref = f"{document['kind']}/{document['metadata']['name']}"
        assert OWNERSHIP.items() <= document["metadata"].get("labels", {}).items(), ref
        template = document.get("spec", {}).get("template", {})
        if "spec" in template:
            assert OWNERSHIP.items() <= template["metadata"]["labels"].items(), ref
        if document["kind"] == "Ingress":
            assert document["spec"]["ingressClassName"], ref


def assert_uninstall_finds_everything(documents: list[dict]) -> None:
    """teardown.yml on a cluster of the user's looks up a fixed list of kinds by the ownership labels: every
    cluster-wide object and every object outside the platform's own namespaces is of one of them."""
    platform = yaml.safe_load((COLLECTION / "roles" / "platform" / "vars" / "main.yml").read_text())
    listed = {(k["api_version"], k["kind"]) for k in platform["platform_uninstall_kinds"]}
    namespaces = {d["metadata"]["name"] for d in documents if d["kind"] == "Namespace"}
    for document in documents:
        if document.get("apiVersion", "").startswith("kind.x-k8s.io"):
            continue
        if document["metadata"].get("namespace") in namespaces:
            continue
        assert (document["apiVersion"], document["kind"]) in listed, (
            f"{document['kind']}/{document['metadata']['name']}"
        )


def test_every_object_carries_the_ownership_labels(committed_documents) -> None:
    assert_owned(committed_documents)
    assert_uninstall_finds_everything(committed_documents)
    kinds = {d["kind"] for d in committed_documents}
    assert {"Namespace", "ClusterRole", "APIService", "IngressClass", "Ingress", "Deployment"} <= kinds
    ingress_class = next(d for d in committed_documents if d["kind"] == "IngressClass")
    # The kind cluster is the platform's own: its class is the default there.
    assert ingress_class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"


def test_committed_kind_config_matches_kinds_fields() -> None:
    jsonschema.validate(yaml.safe_load((MANIFESTS / "kind_cluster" / "kind-config.yaml").read_text()), KIND_SCHEMA)


@pytest.mark.parametrize(
    "mutation",
    [
        lambda c: c.update(workers=3),
        lambda c: c["nodes"][0].update(taints=[]),
        lambda c: c["nodes"][0].update(role="master"),
        lambda c: c["nodes"][0]["extraPortMappings"][0].update(protocol="HTTP"),
    ],
    ids=["unknown top-level field", "unknown node field", "bad role", "bad protocol"],
)
def test_kind_schema_rejects_what_kind_would_ignore_or_refuse(mutation) -> None:
    config = yaml.safe_load((MANIFESTS / "kind_cluster" / "kind-config.yaml").read_text())
    mutation(config)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, KIND_SCHEMA)


def test_default_inventory_shape(committed_documents) -> None:
    """What the case study asks for, as the default inventory renders it."""
    kind_config = yaml.safe_load((MANIFESTS / "kind_cluster" / "kind-config.yaml").read_text())
    roles = [n["role"] for n in kind_config["nodes"]]
    assert roles.count("control-plane") == 1
    assert roles.count("worker") >= 2
    kinds = {d["kind"] for d in committed_documents}
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "APIService"} <= kinds
    deployments = [d for d in committed_documents if d["kind"] == "Deployment"]
    app = next(d for d in deployments if d["metadata"]["namespace"] == "sentiment")
    resources = app["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert set(resources) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"])
    hpa = next(d for d in committed_documents if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["type"] == "Pods"  # the custom metric comes first


def test_ingress_routes_only_paths_the_service_serves(committed_documents) -> None:
    """The role's exposure list and the service's router agree; /metrics never leaves the cluster."""
    served = create_app().state.route_paths
    ingress = next(
        d for d in committed_documents if d["kind"] == "Ingress" and d["metadata"]["namespace"] == "sentiment"
    )
    exposed = {path["path"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert exposed <= served
    assert "/metrics" not in exposed
    assert {"/predict", "/health", "/ready"} <= exposed


def test_least_privilege_by_default(committed_documents) -> None:
    """RBAC as narrow as the configs need; Prometheus (no authentication of its own) not on the ingress."""
    roles = {d["metadata"]["name"]: d for d in committed_documents if d["kind"] == "ClusterRole"}
    # Traefik reads Secrets (its Ingress provider always watches them) only where it routes: no cluster-wide grant.
    bound = {d["roleRef"]["name"] for d in committed_documents if d["kind"] == "ClusterRoleBinding"}
    cluster_wide = [r for name in bound & set(roles) for r in roles[name]["rules"]]
    assert not [r for r in cluster_wide if "secrets" in r.get("resources", [])], "a cluster-wide grant reads Secrets"
    bindings = [d for d in committed_documents if d["kind"] == "RoleBinding"]
    grants = {(d["metadata"]["namespace"], d["roleRef"]["name"]) for d in bindings}
    namespaced = "sentiment-platform-traefik-namespaced"
    assert {("sentiment", namespaced), ("monitoring", namespaced)} <= grants
    assert roles["sentiment-platform-prometheus"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    assert roles["sentiment-platform-adapter-resource-reader"]["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["get", "list", "watch"]}
    ]
    ingresses = {d["metadata"]["name"] for d in committed_documents if d["kind"] == "Ingress"}
    assert "prometheus" not in ingresses


@pytest.mark.slow
def test_a_private_registry_pull_secret_reaches_the_model_and_the_gate(tmp_path: Path) -> None:
    out = render_with(
        tmp_path,
        {
            "sentiment_app_image_registry": "registry.example.com/ml",
            "sentiment_app_image_pull_secret": "registry-credentials",
            "platform_canary_enabled": True,
        },
    )
    documents = load_documents(out)
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in documents
        if d["kind"] == "Deployment" and d["metadata"]["name"] in ("sentiment-service", "acceptance-gate")
    }
    assert set(pods) == {"sentiment-service", "acceptance-gate"}
    for spec in pods.values():
        assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert (
        "imagePullSecrets"
        not in next(
            d
            for d in load_documents(MANIFESTS)
            if d["kind"] == "Deployment" and d["metadata"]["name"] == "sentiment-service"
        )["spec"]["template"]["spec"]
    )


@pytest.mark.slow
def test_a_prometheus_operator_cluster_gets_monitors_rules_and_a_dashboard_instead_of_a_stack(tmp_path: Path) -> None:
    out = render_with(
        tmp_path,
        {
            "kind_cluster_enabled": False,
            "sentiment_app_image_registry": "registry.example.com/ml",
            "monitoring_stack": "prometheus-operator",
            "monitoring_namespace": "sentiment-monitoring",
            "custom_metrics_metrics_server_enabled": False,
        },
    )
    documents = load_documents(out)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    # No Prometheus, Grafana or kube-state-metrics of the platform's, no metrics.k8s.io of its own.
    assert not {name for kind, name in kinds if kind in ("Deployment", "StatefulSet")} & {
        "prometheus",
        "grafana",
        "kube-state-metrics",
        "metrics-server",
    }
    assert ("APIService", "v1beta1.metrics.k8s.io") not in kinds
    monitor = next(d for d in documents if d["kind"] == "PodMonitor")
    rule = next(d for d in documents if d["kind"] == "PrometheusRule")
    dashboard = next(d for d in documents if d["metadata"]["name"] == "sentiment-service-dashboard")
    for selected in (monitor, rule):
        assert selected["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["sentiment-service.json"])["panels"]
    # The same recording and alerting rules as the bundled Prometheus loads.
    bundled = next(d for d in load_documents(MANIFESTS / "monitoring") if d["metadata"]["name"] == "prometheus-rules")

    def rule_names(groups: dict) -> list[str]:
        return [r.get("record") or r["alert"] for g in groups["groups"] for r in g["rules"]]

    assert rule_names(rule["spec"]) == rule_names(yaml.safe_load(bundled["data"]["sentiment-service.yml"]))
    assert monitor["spec"]["selector"]["matchLabels"] == OWNERSHIP
    # The adapter and the model's NetworkPolicy follow the operator's Prometheus.
    adapter = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "prometheus-adapter")
    args = adapter["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--prometheus-url=http://kube-prometheus-stack-prometheus.monitoring.svc:9090/" in args
    policy = next(d for d in documents if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "sentiment-service")
    assert "monitoring" in json.dumps(policy["spec"]["ingress"])
    assert_owned(documents)
    # Both validate against the pinned Prometheus Operator release's CRD schemas.
    schemas = crd_schemas()
    for document in (monitor, rule):
        jsonschema.validate(document, closed(schemas[(document["apiVersion"], document["kind"])]))


@pytest.mark.slow
def test_the_clusters_own_ingress_controller_can_serve_the_platform(tmp_path: Path) -> None:
    out = render_with(
        tmp_path,
        {
            "kind_cluster_enabled": False,
            "sentiment_app_image_registry": "registry.example.com/ml",
            "ingress_enabled": False,
            "ingress_controller": {"namespace": "ingress-nginx", "name": "ingress-nginx"},
            "sentiment_app_ingress_class": "nginx",
        },
    )
    assert not list((out / "ingress").glob("*.yaml"))
    documents = load_documents(out)
    assert not [d for d in documents if d["metadata"]["labels"].get("app.kubernetes.io/name") == "traefik"]
    ingresses = [d for d in documents if d["kind"] == "Ingress"]
    assert ingresses
    for ingress in ingresses:
        assert ingress["spec"]["ingressClassName"] == "nginx"
        assert "traefik.ingress.kubernetes.io/router.middlewares" not in ingress["metadata"].get("annotations", {})
    # No grant for Traefik; the model and Grafana admit the cluster's controller.
    assert not [d for d in documents if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "ingress-controller"]
    policy = next(d for d in documents if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "sentiment-service")
    assert "ingress-nginx" in json.dumps(policy["spec"]["ingress"])
    assert "traefik" not in json.dumps(policy["spec"]["ingress"])
