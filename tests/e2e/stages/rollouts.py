"""Canary rollouts under load: Flagger switched on by a second site.yml run (platform_canary_enabled), then
rollout.yml for each candidate with the inventory's gates and steps: the good one is promoted, the bad ones
are rolled back, no request fails."""

from __future__ import annotations

import json
import time
import urllib.parse

import yaml

from ..runner import (
    BUILD,
    REPO,
    TIMING_FILE,
    Runner,
    Stage,
    canary_state,
    failed,
    finish_hey,
    kubectl,
    start_hey,
)

# The canary stage: Flagger switched on by a second site.yml run; the inventory's gates and steps.
CANARY_VARS = {"platform_canary_enabled": True}
# Candidates, in order, the verdict each must get and whose traffic it is judged on ("e2e": the runner's
# hey; "own": none flows, so rollout.yml sends its own, as `make rollout` does on a quiet cluster):
#   a new serving configuration of the same model: every gate holds -> promoted;
#   the model trained on inverted labels (confident, wrong, healthy card): only the golden set catches it;
#   a configuration that holds every batch for 100 ms: the latency-vs-primary gate catches it;
#   a configuration whose model directory is missing: its pods never become ready, and Flagger rolls it
#   back once the Canary's progress deadline passes, before any traffic reaches it.
CANDIDATES = (
    ("batch-16", "promoted", "own", {"sentiment_app_env": {"SENTIMENT_BATCH_MAX_SIZE": "16"}}),
    ("inverted-labels", "rolled_back", "e2e", {"sentiment_app_train_flags": "--invert-labels"}),
    (
        "slow-batching",
        "rolled_back",
        "e2e",
        {"sentiment_app_env": {"SENTIMENT_BATCH_MAX_WAIT_MS": "100", "SENTIMENT_BATCH_MAX_SIZE": "1024"}},
    ),
    ("never-ready", "rolled_back", "e2e", {"sentiment_app_env": {"SENTIMENT_MODEL_DIR": "/opt/no-model-here"}}),
)
# A rollout whose report has no traffic summary: nothing was sent, nothing can be counted.
NO_TRAFFIC = {"responses": 0, "error_count": 0, "non_2xx": 0, "status_codes": {}, "errors": {}}

SWITCHED = (
    "site.yml with platform_canary_enabled: Flagger runs the model (primary, HTTPRoute, no Ingress); "
    "at most 1% of requests failed while Traefik restarted with its Gateway provider"
)
QUIET = "rollout {candidate}: the model gets no traffic before it"
VERDICT = "rollout {candidate}: {expected}, primary {primary}, no failed request"


def verdict(candidate: str, expected: str) -> str:
    return VERDICT.format(
        candidate=candidate, expected=expected, primary="replaced" if expected == "promoted" else "untouched"
    )


def check_names() -> tuple[str, ...]:
    names = [SWITCHED]
    for candidate, expected, traffic, _ in CANDIDATES:
        if traffic == "own":
            names.append(QUIET.format(candidate=candidate))
        names.append(verdict(candidate, expected))
    return tuple(names)


def heldout_texts(count: int) -> list[str]:
    """Reviews of the model's held-out split: background traffic that looks like the training data."""
    lines = (REPO / "model-service" / "artifacts" / "heldout.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines[:count]]


def prometheus_value(runner: Runner, query: str) -> float:
    """One PromQL query through the API server's service proxy (as rollout.yml reads it): the sum of the
    result's values."""
    path = (
        f"/api/v1/namespaces/{runner.names['monitoring_namespace']}/services/prometheus:web/proxy/api/v1/query?"
        + urllib.parse.urlencode({"query": query})
    )
    result = json.loads(kubectl(runner, "get", "--raw", path).stdout)["data"]["result"]
    return sum(float(r["value"][1]) for r in result)


def wait_for_quiet(runner: Runner, timeout: float = 180) -> bool:
    """Wait until the model's /predict rate, over rollout.yml's window, is below the 1 request/s under which
    rollout.yml sends traffic of its own (it counts the primary's pods only; this, every pod)."""
    window = yaml.safe_load(TIMING_FILE.read_text())["rollout_rps_window"]
    namespace = runner.names["sentiment_app_namespace"]
    query = f'sum(rate(http_requests_total{{namespace="{namespace}", route="/predict"}}[{window}]))'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if prometheus_value(runner, query) < 1:
            return True
        time.sleep(5)
    return False


def rollouts(runner: Runner) -> None:
    """Switch Flagger on (second site.yml run with platform_canary_enabled), then ship each candidate with
    rollout.yml under load: the good one is promoted, the bad ones are rolled back, no request fails."""
    report, names = runner.report, runner.names
    namespace, name = names["sentiment_app_namespace"], names["sentiment_app_name"]
    canary_vars = BUILD / "run-vars-canary.yml"
    canary_vars.write_text(json.dumps(CANARY_VARS, indent=2) + "\n")
    hey = start_hey(runner, 900, 2, heldout_texts(64), log="canary-on-hey.log", rate=5)
    recap = runner.playbook("site.yml", "site-canary-on.log", "-e", f"@{canary_vars}")
    switched = finish_hey(hey, stop=True)
    state = canary_state(runner)
    ingresses = runner.kubectl_json("get", "ingress", "-n", namespace)["items"]
    route = runner.kubectl_json("get", "httproute", "-n", namespace, name)
    report.facts["canary_switch"] = {"recap": recap, "hey": switched, "phase": state["status"].get("phase")}
    # Traefik restarts once to take on its Gateway provider: a one-time change of the ingress itself, held to
    # the bound of the other infrastructure faults (at most 1% of requests), not to a rollout's none.
    report.check(
        SWITCHED,
        recap["failed"] == 0
        and state["status"].get("phase") in ("Initialized", "Succeeded")
        and not [i for i in ingresses if i["metadata"]["name"] == name]
        and route["spec"]["hostnames"] == [names["sentiment_app_host"]]
        and switched["responses"] > 0
        and failed(switched) <= 0.01 * (switched["responses"] + switched["error_count"]),
        {
            "recap": recap,
            "phase": state["status"].get("phase"),
            "requests": switched["responses"] + switched["error_count"],
            "failed": failed(switched),
        },
    )
    # A candidate judged on the runner's traffic gets a hey of its own (its requests are counted alone). The
    # next one's hey starts before this one's stops, so that traffic never pauses between two such rollouts
    # and rollout.yml finds it flowing at once; after a quiet spell the first waits 10 s for it.
    prestarted = None  # the next candidate's hey, started before the previous one's stopped
    for index, (candidate, expected, traffic, variables) in enumerate(CANDIDATES):
        primary_before = runner.kubectl_json("get", "deployment", "-n", namespace, f"{name}-primary")
        if traffic == "e2e":
            hey, prestarted = prestarted, None
            if hey is None:
                hey = start_hey(runner, 900, 2, heldout_texts(64), log=f"rollout-{candidate}-hey.log", rate=5)
                time.sleep(10)  # two 5 s scrapes: rollout.yml sees the traffic flowing and sends none of its own
        else:
            hey = None
            report.check(QUIET.format(candidate=candidate), wait_for_quiet(runner))
        extra = {**variables, "rollout_candidate": candidate, "rollout_expect": expected}
        extra_file = BUILD / f"rollout-{candidate}.yml"
        extra_file.write_text(json.dumps(extra, indent=2) + "\n")
        try:
            runner.playbook("rollout.yml", f"rollout-{candidate}.log", "-e", f"@{canary_vars}", "-e", f"@{extra_file}")
        except RuntimeError as exc:
            print(f"[e2e] rollout.yml for {candidate}: {str(exc)[-600:]}", flush=True)
        path = REPO / ".build" / "rollouts" / f"{candidate}.json"
        rollout = json.loads(path.read_text()) if path.exists() else {"outcome": "no report", "reason": "", "steps": []}
        # rollout.yml's own hey summary when it sent the traffic ("external" when it saw ours flowing).
        own = rollout.get("traffic") if isinstance(rollout.get("traffic"), dict) else None
        after = CANDIDATES[index + 1] if index + 1 < len(CANDIDATES) else None
        if hey and after and after[2] == "e2e":
            prestarted = start_hey(runner, 900, 2, heldout_texts(64), log=f"rollout-{after[0]}-hey.log", rate=5)
        result = finish_hey(hey, stop=True) if hey else own or NO_TRAFFIC
        primary_after = runner.kubectl_json("get", "deployment", "-n", namespace, f"{name}-primary")
        # The primary's containers (image, env, resources): the pod template Flagger copies on promotion.
        primary_changed = (
            primary_before["spec"]["template"]["spec"]["containers"]
            != primary_after["spec"]["template"]["spec"]["containers"]
        )
        entry = {
            "candidate": candidate,
            "traffic": "rollout.yml" if traffic == "own" else "e2e",
            "outcome": rollout["outcome"],
            "reason": rollout["reason"],
            "steps": rollout["steps"],
            "requests": result["responses"] + result["error_count"],
            "failed": failed(result),
        }
        report.rollouts.append(entry)
        report.check(
            verdict(candidate, expected),
            rollout["outcome"] == expected
            and (own is not None) == (traffic == "own")
            and primary_changed == (expected == "promoted")
            and entry["requests"] > 0
            and entry["failed"] == 0,
            {**entry, "status_codes": result["status_codes"], "errors": result["errors"]},
        )


STAGE = Stage("rollouts", rollouts, title="canary rollouts under load", checks=check_names(), needs=("cluster_checks",))
