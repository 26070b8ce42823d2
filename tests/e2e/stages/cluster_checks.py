"""The cluster site.yml made: its nodes, the GPU label and taint, every pod Ready, the images (mirror check),
and the sentiment_app role's own verification (`site.yml --tags verify`)."""

from __future__ import annotations

from ..runner import Runner, Stage, image_check_names, image_checks, not_ready_pods

NODES = "1 control-plane and {workers} workers, all Ready"
GPU = "{gpu_workers} worker(s) labelled and tainted as simulated GPU nodes"
PODS_READY = "every pod Ready"
# image_checks' label for this cluster.
CLUSTER = "kind cluster"
VERIFY = "sentiment_app verify: custom metric served for the pods, /predict answers through Traefik on the host port"


def cluster_checks(runner: Runner) -> None:
    report = runner.report
    names = runner.names
    nodes = runner.kubectl_json("get", "nodes")["items"]
    summary = []
    for node in nodes:
        labels = node["metadata"]["labels"]
        summary.append(
            {
                "name": node["metadata"]["name"],
                "role": "control-plane" if "node-role.kubernetes.io/control-plane" in labels else "worker",
                "ready": any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]),
                "labels": {
                    k: v for k, v in labels.items() if not k.startswith(("kubernetes.io/", "beta.kubernetes.io/"))
                },
                "taints": [f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in node["spec"].get("taints", [])],
                "kubelet": node["status"]["nodeInfo"]["kubeletVersion"],
            }
        )
    report.facts["nodes"] = summary
    roles = [n["role"] for n in summary]
    workers = int(names["kind_cluster_workers"])
    report.check(
        NODES.format(workers=workers),
        roles.count("control-plane") == 1 and roles.count("worker") == workers and all(n["ready"] for n in summary),
        summary,
    )
    label, taint = names["kind_cluster_gpu_label"], names["kind_cluster_gpu_taint"]
    gpu = [n for n in summary if n["labels"].get(label["key"]) == str(label["value"])]
    report.check(
        GPU.format(gpu_workers=names["kind_cluster_gpu_workers"]),
        len(gpu) == int(names["kind_cluster_gpu_workers"])
        and all(f"{taint['key']}={taint['value']}:{taint['effect']}" in n["taints"] for n in gpu),
        gpu,
    )

    pods = runner.kubectl_json("get", "pods", "--all-namespaces")["items"]
    not_ready = not_ready_pods(pods)
    report.facts["pods"] = sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods)
    report.check(PODS_READY, not not_ready, not_ready or f"{len(pods)} pods")
    report.facts["model_pods"] = {
        p["metadata"]["name"]: p["spec"].get("nodeName")
        for p in pods
        if p["metadata"]["namespace"] == names["sentiment_app_namespace"]
    }

    image_checks(runner, CLUSTER, model_from_registry=False)

    # The role's own checks: the HPA's custom metric is served for the pods, the ingress answers from the host.
    recap = runner.playbook("site.yml", "site-verify.log", "--tags", "verify")
    report.check(VERIFY, recap["failed"] == 0 and recap["ok"] > 0, recap)


STAGE = Stage(
    "cluster_checks",
    cluster_checks,
    title="cluster checks",
    checks=(NODES, GPU, PODS_READY, *image_check_names(CLUSTER, model_from_registry=False), VERIFY),
    needs=("site",),
)
