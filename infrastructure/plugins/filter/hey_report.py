"""Filter plugin ``sentiment.platform.hey_report``: the numbers in hey's text summary.

hey exits 0 even when every request failed, so a playbook must read its output: the status code
distribution, the error distribution, requests per second and latency percentiles. The parser is
module_utils/hey.py's, the one the ``sentiment.platform.hey`` module and the e2e runner use; this filter is
for hey output a playbook got some other way (the module returns the same numbers as its ``report``).
Documentation: hey_report.yml beside this file (filter plugins document themselves in a YAML sidecar).
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.sentiment.platform.plugins.module_utils.hey import HeyError, parse


def hey_report(output: str) -> dict:
    """Parse hey's summary; an output without one (hey did not run) is an error."""
    try:
        return parse(output)
    except HeyError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self) -> dict:
        return {"hey_report": hey_report}
