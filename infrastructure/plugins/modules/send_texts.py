"""Module ``sentiment.platform.send_texts``: post many distinct texts to the model's /predict, in batches."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: send_texts
short_description: Post a list of texts to the model's /predict in batch requests, a few at a time
author: sentiment-platform maintainers
description:
  - Splits O(texts) into batches of O(batch_size) and posts each to O(url) as a JSON object whose C(texts) is the
    batch, O(concurrency) requests at a time, then returns what came back in RV(report).
  - Meant for traffic whose texts matter (a drift demo's in-distribution and shifted phases), which a load
    generator cannot send (hey repeats one body).
  - One task instead of a loop of M(ansible.builtin.uri) items (a loop starts a module per request, about a
    second each on a small machine), where this sends a hundred requests of 64 texts in a few seconds.
  - Every request counts. The task fails when any got no 200 (RV(report) still tells what happened).
options:
  url:
    description: The model's /predict URL (through the ingress, say).
    type: str
    required: true
  texts:
    description: The texts, in the order they are sent.
    type: list
    elements: str
    required: true
  batch_size:
    description: Texts per request; at most the service's C(max_batch_items) (64 by default).
    type: int
    default: 64
  concurrency:
    description: Requests in flight at once.
    type: int
    default: 4
  host:
    description: The Host header, for example the name an ingress routes on.
    type: str
  timeout:
    description: Seconds to wait for each response.
    type: float
    default: 30
notes:
  - Check mode is not supported; the task is skipped in check mode.
seealso:
  - module: sentiment.platform.hey
"""

EXAMPLES = r"""
- name: Send one review a line through the ingress, 64 texts per request
  sentiment.platform.send_texts:
    url: http://127.0.0.1:8080/predict
    host: sentiment.local
    texts: "{{ lookup('ansible.builtin.file', 'reviews.txt') | split('\n') }}"
  register: sent
  failed_when: false

- name: Show what came back
  ansible.builtin.debug:
    msg: "{{ sent.report.status_codes }} in {{ sent.report.seconds }} s"
"""

RETURN = r"""
report:
  description: What the requests got.
  type: dict
  returned: always
  contains:
    requests: {description: Requests sent (one per batch)., type: int}
    texts: {description: Texts sent., type: int}
    status_codes: {description: Responses per HTTP status code., type: dict}
    errors: {description: Requests that got no response, by error., type: dict}
    failed: {description: Requests that got no 200 (another status or no response)., type: int}
    seconds: {description: Wall-clock seconds from the first request to the last answer., type: float}
  sample:
    requests: 110
    texts: 7040
    status_codes: {"200": 110}
    errors: {}
    failed: 0
    seconds: 4.2
"""

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

ARGUMENT_SPEC = {
    "url": {"type": "str", "required": True},
    "texts": {"type": "list", "elements": "str", "required": True},
    "batch_size": {"type": "int", "default": 64},
    "concurrency": {"type": "int", "default": 4},
    "host": {"type": "str"},
    "timeout": {"type": "float", "default": 30},
}


def batches(texts: list[str], size: int) -> list[list[str]]:
    """The texts in consecutive batches of `size` (the last may be shorter)."""
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def post(url: str, batch: list[str], host: str | None, timeout: float) -> str:
    """One batch request: the response's status code, or the error that left it without one."""
    headers = {"Content-Type": "application/json", **({"Host": host} if host else {})}
    request = urllib.request.Request(url, data=json.dumps({"texts": batch}).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (OSError, ValueError) as exc:
        return f"error: {getattr(exc, 'reason', exc)}"


def summarise(outcomes: list[str], texts: int, seconds: float) -> dict:
    """The report: responses by status code, requests without one by error, and how many got no 200."""
    codes = Counter(outcome for outcome in outcomes if not outcome.startswith("error: "))
    errors = Counter(outcome.removeprefix("error: ") for outcome in outcomes if outcome.startswith("error: "))
    return {
        "requests": len(outcomes),
        "texts": texts,
        "status_codes": dict(sorted(codes.items())),
        "errors": dict(sorted(errors.items())),
        "failed": len(outcomes) - codes.get("200", 0),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=False)
    params = module.params
    if params["batch_size"] < 1 or params["concurrency"] < 1:
        module.fail_json(msg="batch_size and concurrency must be at least 1")
    chunks = batches(params["texts"], params["batch_size"])
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=params["concurrency"]) as pool:
        outcomes = list(pool.map(lambda batch: post(params["url"], batch, params["host"], params["timeout"]), chunks))
    report = summarise(outcomes, len(params["texts"]), time.monotonic() - started)
    if report["failed"]:
        module.fail_json(msg=f"{report['failed']} of {report['requests']} requests got no 200", report=report)
    module.exit_json(changed=False, report=report)


if __name__ == "__main__":
    main()
