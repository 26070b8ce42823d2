"""NetworkPolicy: a pod in the default namespace tries the model's Service and pod directly (blocked) and
Traefik (reached, the positive control)."""

from __future__ import annotations

import json

from ..runner import Runner, Stage, kubectl, model_pods

ENFORCED = "NetworkPolicy enforced: another namespace cannot reach the model directly, yet reaches Traefik"


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def network_policy(runner: Runner) -> None:
    """NetworkPolicy is enforced: a pod in another namespace cannot reach the model directly, but it can reach
    Traefik (a positive control: its network works), and the ingress path to the model works."""
    # A pod that is Ready, with its address (one the HPA has just added may have none yet).
    model = next((p for p in model_pods(runner) if p["status"].get("podIP") and ready(p)), None)
    if model is None:
        raise RuntimeError("no Ready model pod to aim at")
    image = model["spec"]["containers"][0]["image"]
    namespace = runner.names["sentiment_app_namespace"]
    traefik = runner.kubectl_json("get", "services", "-A", "-l", "app.kubernetes.io/name=traefik")["items"][0]
    traefik_namespace = traefik["metadata"]["namespace"]
    targets = {
        "model Service": f"http://{runner.names['sentiment_app_name']}.{namespace}.svc/health",
        "model pod": f"http://{model['status']['podIP']}:8000/health",
        "Traefik": f"http://traefik.{traefik_namespace}.svc/ping",
    }
    script = (
        "import json, sys, urllib.request\n"
        "out = {}\n"
        "for name, url in json.loads(sys.argv[1]).items():\n"
        "    try:\n"
        "        urllib.request.urlopen(url, timeout=5)\n"
        "        out[name] = 'reached'\n"
        "    except urllib.error.HTTPError:\n"
        "        out[name] = 'reached'\n"
        "    except OSError as exc:\n"
        "        out[name] = 'blocked: ' + type(exc).__name__\n"
        "print(json.dumps(out))\n"
    )
    kubectl(
        runner,
        "run",
        "netpol-probe",
        "-n",
        "default",
        "--image",
        image,
        "--image-pull-policy=IfNotPresent",
        "--restart=Never",
        "--command",
        "--",
        "python",
        "-c",
        script,
        json.dumps(targets),
    )
    kubectl(
        runner,
        "wait",
        "-n",
        "default",
        "pod/netpol-probe",
        "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=120s",
        check=False,
    )
    logs = kubectl(runner, "logs", "-n", "default", "netpol-probe", check=False).stdout.strip()
    kubectl(runner, "delete", "pod", "-n", "default", "netpol-probe", "--wait=false", check=False)
    try:
        seen = json.loads(logs.splitlines()[-1])
    except (ValueError, IndexError):
        seen = {"probe output": logs[-500:]}
    runner.report.facts["network_policy"] = seen
    runner.report.check(
        ENFORCED,
        seen.get("Traefik") == "reached"
        and str(seen.get("model Service", "")).startswith("blocked")
        and str(seen.get("model pod", "")).startswith("blocked"),
        seen,
    )


STAGE = Stage("network_policy", network_policy, title="NetworkPolicy", checks=(ENFORCED,), needs=("cluster_checks",))
