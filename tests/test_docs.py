"""The README stays short and the documentation stays linked: every relative link of README.md and docs/
resolves to a file of the repository, every #anchor to a heading of its page, every page is reachable.

Pure text checks (no network, no rendering): anchors follow GitHub's rule (lowercase, punctuation dropped but
for '-' and '_', each space a '-', '-1', '-2' ... for repeated headings).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest
from infra import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 300
PAGES = [README, *sorted(DOCS.rglob("*.md"))]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets (an image in a link).
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+[\"'(][^)]*)?\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"""<a\b[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
SCHEME = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")
LINE_ANCHOR = re.compile(r"^L\d+(?:-L\d+)?$")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its text lowercased, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def prose_lines(page: Path) -> list[str]:
    """The page's lines outside fenced code blocks, inline code removed (neither holds links or headings)."""
    lines, fence = [], ""
    for line in page.read_text(encoding="utf-8").splitlines():
        opening = FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = ""
            continue
        if opening:
            fence = opening.group(1)
            continue
        lines.append(line)
    return lines


@cache
def anchors(page: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(page):
        found.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if not heading:
            continue
        anchor = github_anchor(heading.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(f"{anchor}-{count}" if count else anchor)
    return frozenset(found)


def links(page: Path) -> list[str]:
    """Every link target of the page: inline links and images, reference definitions, HTML href/src."""
    targets = []
    for line in prose_lines(page):
        text = INLINE_CODE.sub("", line)
        targets += INLINE_LINK.findall(text) + HTML_LINK.findall(text)
        definition = REFERENCE_DEFINITION.match(text)
        if definition:
            targets.append(definition.group(1))
    return [target.removeprefix("<").removesuffix(">") for target in targets]


def broken(page: Path, target: str) -> str | None:
    """Why a relative link target does not resolve from the page, or None when it does (or is not relative)."""
    if SCHEME.match(target):
        return None
    path, _, fragment = target.partition("#")
    resolved = (page.parent / unquote(path)).resolve() if path else page
    if not resolved.is_relative_to(REPO):
        return f"{target}: outside the repository"
    if not resolved.exists():
        return f"{target}: no such file ({resolved.relative_to(REPO)})"
    return missing_anchor(resolved, fragment, target) if fragment else None


def missing_anchor(resolved: Path, fragment: str, target: str) -> str | None:
    """Why #fragment names no heading of the file (a line range, #L1-L9, is fine for any other file)."""
    if resolved.suffix != ".md":
        return None if LINE_ANCHOR.match(fragment) else f"{target}: an anchor into a file that has no headings"
    if unquote(fragment) not in anchors(resolved):
        return f"{target}: no heading of {resolved.relative_to(REPO)} has the anchor #{fragment}"
    return None


def test_the_anchor_rule_is_githubs() -> None:
    assert github_anchor("Two models: TF-IDF and MiniLM") == "two-models-tf-idf-and-minilm"
    assert github_anchor("An existing cluster (EKS, GKE, k3s, kubeadm)") == "an-existing-cluster-eks-gke-k3s-kubeadm"
    assert github_anchor("MiniLM in the cluster, and on GPUs") == "minilm-in-the-cluster-and-on-gpus"
    assert github_anchor("`make up` and snake_case") == "make-up-and-snake_case"


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move detail into docs/"


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(REPO)) for page in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    problems = [problem for target in links(page) if (problem := broken(page, target))]
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / unquote(target.partition("#")[0])).resolve() for target in links(README)}
    unlinked = [page.relative_to(REPO) for page in sorted(DOCS.glob("*.md")) if page.resolve() not in linked]
    assert not unlinked, f"docs pages the README's Documentation index does not link: {unlinked}"


def test_readme_keeps_the_knobs_markers() -> None:
    text = README.read_text(encoding="utf-8")
    begin, end = text.find("<!-- knobs:begin -->"), text.find("<!-- knobs:end -->")
    assert 0 <= begin < end, "README.md needs <!-- knobs:begin --> then <!-- knobs:end --> (the knobs table)"
