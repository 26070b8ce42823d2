"""Module ``sentiment.platform.timeline_png``: draw a report's samples as a PNG of stacked time series."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: timeline_png
short_description: Draw time series from a playbook's samples into a PNG
author: sentiment-platform maintainers
requirements: [matplotlib]
description:
  - Writes one PNG of the O(samples) a playbook recorded, one panel per entry of O(panels) and one per
    gate of O(gates), stacked over a shared time axis, for the reports of load.yml (replicas) and rollout.yml
    (weight, replicas, req/s and p95 per track, each gate against its threshold). Missing or null values are
    left out.
  - Reports C(changed) when the file's bytes differ from what was there.
options:
  path: {description: Where the PNG goes., type: path, required: true}
  title: {description: Title above the panels., type: str, required: true}
  samples:
    description: The samples, each a dict with C(t) (seconds) and the values the panels name.
    type: list
    elements: dict
    required: true
  panels:
    description:
      - Each a dict with C(title), optional C(unit) (axis label), C(series) (a dict of series label to the
        dotted path of its value in a sample, e.g. C(ready.primary)) and optional C(limits) (a dict of label
        to the value of a horizontal line).
    type: list
    elements: dict
    default: []
  gates:
    description:
      - Gates as sentiment.platform.canary_timeline returns them (C(name), optional C(min) and C(max)); each
        gets a panel of C(gates.<name>) with its bounds as lines.
    type: list
    elements: dict
    default: []
  events:
    description: Vertical markers across every panel, each a dict with C(t) and C(label).
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Draw the HPA timeline of a load test
  sentiment.platform.timeline_png:
    path: .build/load-report.png
    title: make load
    samples: "{{ load_timeline.samples }}"
    panels:
      - {title: Replicas, series: {current: current, desired: desired, ready: ready}}

- name: Draw a canary analysis, one panel per gate
  sentiment.platform.timeline_png:
    path: .build/rollouts/minilm.png
    title: rollout of minilm
    samples: "{{ rollout_timeline.samples }}"
    panels:
      - {title: Canary traffic weight, unit: "%", series: {weight: weight}}
    gates: "{{ rollout_timeline.gates }}"
"""

RETURN = r"""
path: {description: The PNG written., type: str, returned: always}
points: {description: Points drawn in all., type: int, returned: always}
"""

import io
import os

from ansible.module_utils.basic import AnsibleModule

try:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
except ImportError:  # pragma: no cover - reported by the module
    pyplot = None


def value_at(sample: dict, path: str) -> float | None:
    """The value at a dotted path of a sample (None when any step is missing)."""
    value: object = sample
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return None if value is None else float(value)


def gate_panels(gates: list[dict]) -> list[dict]:
    panels = []
    for gate in gates:
        limits = {bound: gate[bound] for bound in ("min", "max") if gate.get(bound) is not None}
        series = {gate["name"]: f"gates.{gate['name']}"}
        panels.append({"title": f"gate: {gate['name']}", "series": series, "limits": limits})
    return panels


def draw(title: str, samples: list[dict], panels: list[dict], events: list[dict]) -> tuple[bytes, int]:
    figure, axes = pyplot.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels) + 0.6), sharex=True, squeeze=False)
    points = 0
    for axis, panel in zip(axes[:, 0], panels, strict=True):
        for name, path in panel.get("series", {}).items():
            pairs = [(float(sample["t"]), value_at(sample, path)) for sample in samples]
            kept = [(t, v) for t, v in pairs if v is not None]
            if kept:
                axis.plot([t for t, _ in kept], [v for _, v in kept], label=name, linewidth=1.4)
                points += len(kept)
        for label, value in (panel.get("limits") or {}).items():
            axis.axhline(float(value), color="tab:red", linestyle="--", linewidth=1, label=label)
        for event in events:
            axis.axvline(float(event["t"]), color="grey", linestyle=":", linewidth=1)
        axis.set_title(panel["title"], fontsize=9, loc="left")
        axis.set_ylabel(panel.get("unit", ""), fontsize=8)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("seconds")
    for event in events:
        axes[0, 0].annotate(
            event["label"],
            (float(event["t"]), 1),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            rotation=90,
            va="top",
            ha="right",
        )
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    # No timestamps in the file: the same samples give the same bytes.
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    pyplot.close(figure)
    return buffer.getvalue(), points


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "title": {"type": "str", "required": True},
            "samples": {"type": "list", "elements": "dict", "required": True},
            "panels": {"type": "list", "elements": "dict", "default": []},
            "gates": {"type": "list", "elements": "dict", "default": []},
            "events": {"type": "list", "elements": "dict", "default": []},
        },
        supports_check_mode=True,
    )
    if pyplot is None:
        module.fail_json(msg="matplotlib is required (requirements-dev.txt)")
    path = module.params["path"]
    panels = module.params["panels"] + gate_panels(module.params["gates"])
    if not panels:
        module.fail_json(msg="nothing to draw: give panels or gates")
    image, points = draw(module.params["title"], module.params["samples"], panels, module.params["events"])
    old = open(path, "rb").read() if os.path.exists(path) else None  # noqa: SIM115 - small file, read once
    changed = old != image
    if changed and not module.check_mode:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(image)
    module.exit_json(changed=changed, path=path, points=points)


if __name__ == "__main__":
    main()
