"""Module ``sentiment.platform.write_files``: a directory of rendered files, written in one step."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: write_files
short_description: Write a set of files into a directory in one step, and remove the ones it no longer names
author: sentiment-platform maintainers
description:
  - Creates O(path) if needed, writes every file of O(files) whose content differs from what is there, and,
    with O(prune), removes the files matching O(prune_pattern) that O(files) does not name.
  - What the roles of the platform render their manifests with (the C(manifests) role). The templates are
    rendered on the controller by the C(ansible.builtin.template) lookup and written by one module run,
    instead of one M(ansible.builtin.template) task per file (about a second each).
  - Reports C(changed) when a file was written or removed. Supports check mode and diff mode.
options:
  path: {description: The directory., type: path, required: true}
  files:
    description: File name (no directory part) to its content.
    type: dict
    required: true
  mode: {description: Permissions of the files (a directory it creates gets 0755)., type: str, default: "0644"}
  prune:
    description: Remove the files matching O(prune_pattern) that O(files) does not name.
    type: bool
    default: false
  prune_pattern: {description: Shell pattern of the files O(prune) may remove., type: str, default: "*.yaml"}
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
"""

EXAMPLES = r"""
- name: Render a role's manifests into a directory
  sentiment.platform.write_files:
    path: "{{ manifests_dir }}"
    files: "{{ dict(names | zip(query('ansible.builtin.template', *templates))) }}"
    prune: true
"""

RETURN = r"""
written:
  description: The files written (new or changed), by name.
  returned: always
  type: list
  elements: str
removed:
  description: The files removed, by name.
  returned: always
  type: list
  elements: str
"""

import fnmatch
import os

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "files": {"type": "dict", "required": True},
            "mode": {"type": "str", "default": "0644"},
            "prune": {"type": "bool", "default": False},
            "prune_pattern": {"type": "str", "default": "*.yaml"},
        },
        supports_check_mode=True,
    )
    directory, files = module.params["path"], module.params["files"]
    mode = int(module.params["mode"], 8)
    bad = [name for name in files if not name or os.sep in name or name in (".", "..")]
    if bad:
        module.fail_json(msg=f"file names must not contain a directory part: {bad}")

    written, removed, diffs = [], [], []
    if not os.path.isdir(directory) and not module.check_mode:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    for name in sorted(files):
        target, content = os.path.join(directory, name), str(files[name])
        before = None
        if os.path.isfile(target):
            with open(target, encoding="utf-8") as handle:
                before = handle.read()
        if before != content:
            written.append(name)
            diffs.append({"before_header": target, "after_header": target, "before": before or "", "after": content})
            if not module.check_mode:
                staging = target + ".partial"
                with open(staging, "w", encoding="utf-8") as handle:
                    handle.write(content)
                os.chmod(staging, mode)
                os.replace(staging, target)
        elif not module.check_mode and (os.stat(target).st_mode & 0o7777) != mode:
            os.chmod(target, mode)
            written.append(name)
    if module.params["prune"] and os.path.isdir(directory):
        for name in sorted(os.listdir(directory)):
            if name not in files and fnmatch.fnmatch(name, module.params["prune_pattern"]):
                removed.append(name)
                diffs.append({"before_header": os.path.join(directory, name), "after_header": "(removed)"})
                if not module.check_mode:
                    os.remove(os.path.join(directory, name))
    module.exit_json(changed=bool(written or removed), written=written, removed=removed, diff=diffs)


if __name__ == "__main__":
    main()
