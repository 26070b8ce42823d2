"""Module ``sentiment.platform.hey``: send HTTP load with hey and read its summary."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hey
short_description: Send HTTP load with hey, in the foreground or the background, and read its summary
author: sentiment-platform maintainers
requirements: [hey (the load generator) on the PATH of the host the task runs on]
description:
  - Runs L(hey,https://github.com/rakyll/hey) with O(concurrency) clients for O(duration) seconds and
    returns the numbers of its summary as RV(report).
  - hey exits 0 even when every request failed; RV(report) counts non-2xx responses and requests that got
    no response, so a playbook can assert on them.
  - O(state=finished) runs hey to the end of its duration. O(state=started) starts it in the background and
    returns its RV(pid) and RV(log) at once, so that other tasks can run while the load flows (hey runs on
    after the task). O(state=stopped) collects such a run; it interrupts hey first (on SIGINT hey stops and
    prints its summary) unless O(interrupt=false), when it waits for hey to end by itself.
  - The command line, the background run and the parser are module_utils/hey.py's, which the collection's
    C(hey_report) filter and the repository's e2e runner use too.
options:
  state:
    description:
      - V(finished) runs hey to the end and returns its RV(report).
      - V(started) starts hey in the background and returns RV(pid) and RV(log).
      - V(stopped) stops the hey of O(pid) (see O(interrupt)) and returns the RV(report) read from O(log).
    type: str
    choices: [finished, started, stopped]
    default: finished
  url:
    description: The URL every request goes to. Required with O(state=finished) and O(state=started).
    type: str
  duration:
    description: Seconds hey sends requests for (hey's C(-z)). Required with O(state=finished) and O(state=started).
    type: float
  concurrency:
    description: Clients sending requests at once (hey's C(-c)).
    type: int
    default: 50
  rate:
    description: Requests per second each client sends at most (hey's C(-q)); V(0) sends as fast as answered.
    type: float
    default: 0
  method:
    description: HTTP method (hey's C(-m)).
    type: str
    default: GET
  content_type:
    description:
      - Content-Type of the requests (hey's C(-T)). hey's default is C(text/html); V(application/json) when
        O(body) is a dict or a list and this is unset.
    type: str
  headers:
    description: Further request headers, name to value (hey's C(-H), once for each).
    type: dict
    default: {}
  host:
    description: The Host header (hey's C(-host)), for example the name an ingress routes on.
    type: str
  body:
    description: The request body (hey's C(-d)); a dict or a list is sent as JSON.
    type: raw
  body_file:
    description: A file hey reads the request body from (hey's C(-D)). Mutually exclusive with O(body).
    type: path
  log:
    description:
      - Where hey's output goes. With O(state=started), a new temporary file when unset; required with
        O(state=stopped) (the RV(log) that O(state=started) returned); with O(state=finished), an optional copy.
    type: path
  pid:
    description: The hey to stop, the RV(pid) that O(state=started) returned. Required with O(state=stopped).
    type: int
  interrupt:
    description:
      - With O(state=stopped), V(true) interrupts hey now; V(false) waits for it to end at the end of its
        duration. Either way a hey that has ended already is only read.
    type: bool
    default: true
  timeout:
    description: With O(state=stopped), seconds to wait for hey to exit (the task fails after them).
    type: int
    default: 60
  executable:
    description:
      - The hey program, a name looked up on the PATH or a path.
      - With O(state=stopped), the program O(pid) must be running (where /proc tells), so that a pid another
        program has taken since is never signalled.
    type: str
    default: hey
notes:
  - Check mode is not supported; the task is skipped in check mode.
  - hey started with O(state=started) is not stopped when the play ends or fails; stop it with
    O(state=stopped), or let its O(duration) end it.
seealso:
  - plugin: sentiment.platform.hey_report
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Send 10 s of GETs from 8 clients and fail on any failed request
  sentiment.platform.hey:
    url: http://127.0.0.1:8080/health
    duration: 10
    concurrency: 8
  register: smoke
  failed_when: smoke.report.non_2xx > 0 or smoke.report.error_count > 0

- name: Start load through the ingress in the background (4 clients, 5 requests/s each)
  sentiment.platform.hey:
    state: started
    url: http://127.0.0.1:8080/predict
    host: sentiment.local
    method: POST
    body: {text: A warm, funny film.}
    duration: 900
    concurrency: 4
    rate: 5
    log: /tmp/rollout-hey.txt
  register: traffic

- name: Stop it once the canary is judged, and read its summary
  sentiment.platform.hey:
    state: stopped
    pid: "{{ traffic.pid }}"
    log: "{{ traffic.log }}"
  register: traffic_summary

- name: Or let it run to the end of its duration
  sentiment.platform.hey:
    state: stopped
    pid: "{{ traffic.pid }}"
    log: "{{ traffic.log }}"
    interrupt: false
    timeout: 1000
"""

RETURN = r"""
cmd:
  description: hey's command line.
  type: list
  elements: str
  returned: state is finished or started
  sample: [hey, -z, 150s, -c, "32", -m, POST, -T, application/json, -host, sentiment.local, -d, '{"text": "..."}',
           "http://127.0.0.1:8080/predict"]
pid:
  description: hey's process id.
  type: int
  returned: state is started or stopped
log:
  description: The file hey's output went to.
  type: str
  returned: state is started or stopped, or finished with O(log)
interrupted:
  description: Whether the task sent hey SIGINT (false when it had ended already, or with O(interrupt=false)).
  type: bool
  returned: state is stopped
report:
  description: The numbers of hey's summary.
  type: dict
  returned: state is finished or stopped
  contains:
    requests_per_second: {description: Requests per second over the run., type: float}
    p50_seconds: {description: Median latency in seconds (null when hey printed none)., type: float}
    p99_seconds: {description: 99th percentile latency in seconds (null when hey printed none)., type: float}
    status_codes: {description: Responses per HTTP status code., type: dict}
    responses: {description: Responses received, all status codes., type: int}
    non_2xx: {description: Responses whose status is not 2xx., type: int}
    errors: {description: Requests that got no response, by hey's error message., type: dict}
    error_count: {description: Requests that got no response., type: int}
  sample:
    requests_per_second: 912.3
    p50_seconds: 0.0128
    p99_seconds: 0.0911
    status_codes: {"200": 27371}
    responses: 27371
    non_2xx: 0
    errors: {}
    error_count: 0
"""

import json
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sentiment.platform.plugins.module_utils.hey import HeyError, Run, command, parse, run, start

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["finished", "started", "stopped"], "default": "finished"},
    "url": {"type": "str"},
    "duration": {"type": "float"},
    "concurrency": {"type": "int", "default": 50},
    "rate": {"type": "float", "default": 0},
    "method": {"type": "str", "default": "GET"},
    "content_type": {"type": "str"},
    "headers": {"type": "dict", "default": {}},
    "host": {"type": "str"},
    "body": {"type": "raw"},
    "body_file": {"type": "path"},
    "log": {"type": "path"},
    "pid": {"type": "int"},
    "interrupt": {"type": "bool", "default": True},
    "timeout": {"type": "int", "default": 60},
    "executable": {"type": "str", "default": "hey"},
}


def argv(module: AnsibleModule) -> list[str]:
    """hey's command line from the task's options."""
    p = module.params
    body, content_type = p["body"], p["content_type"]
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
        content_type = content_type or "application/json"
    return command(
        p["url"],
        duration=p["duration"],
        concurrency=p["concurrency"],
        rate=p["rate"],
        method=p["method"],
        content_type=content_type,
        headers={str(k): str(v) for k, v in p["headers"].items()},
        host=p["host"],
        body=body,
        body_file=p["body_file"],
        executable=module.get_bin_path(p["executable"], required=True),
    )


def stop(module: AnsibleModule) -> None:
    p = module.params
    hey = Run(p["pid"], p["log"], p["executable"])
    interrupted = p["interrupt"] and hey.running()
    try:
        report = hey.finish(interrupt=p["interrupt"], timeout=p["timeout"])
    except (HeyError, OSError) as exc:
        try:
            output = hey.output()[-2000:]
        except OSError:
            output = None
        module.fail_json(msg=f"hey (pid {p['pid']}): {exc}", pid=p["pid"], log=p["log"], output=output)
    module.exit_json(changed=interrupted, pid=p["pid"], log=p["log"], interrupted=interrupted, report=report)


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[
            ("state", "finished", ["url", "duration"]),
            ("state", "started", ["url", "duration"]),
            ("state", "stopped", ["pid", "log"]),
        ],
        mutually_exclusive=[("body", "body_file")],
        supports_check_mode=False,
    )
    p = module.params
    if p["state"] == "stopped":
        stop(module)
    try:
        cmd = argv(module)
    except HeyError as exc:
        module.fail_json(msg=str(exc))
    if p["state"] == "started":
        log = p["log"]
        if log is None:
            with tempfile.NamedTemporaryFile(prefix="hey-", suffix=".txt", delete=False) as handle:
                log = handle.name
        hey = start(cmd, log)
        module.exit_json(changed=True, cmd=cmd, pid=hey.pid, log=str(hey.log))
    output = run(cmd, p["log"])
    try:
        report = parse(output)
    except HeyError as exc:
        module.fail_json(msg=str(exc), cmd=cmd, output=output[-2000:])
    module.exit_json(changed=False, cmd=cmd, report=report, **({"log": p["log"]} if p["log"] else {}))


if __name__ == "__main__":
    main()
