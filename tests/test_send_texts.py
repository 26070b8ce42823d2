"""sentiment.platform.send_texts, the drift demo's sender, against the real service on 127.0.0.1: batches of the
service's size are answered, an oversized batch and an unreachable URL are counted as failures, and the
module in a playbook fails its task on them while still reporting what came back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.sentiment.platform.plugins.modules.send_texts import batches, post, summarise
from infra import run_local_playbook
from svc import DEFAULT_ARTIFACTS, Server, free_port, start_server

REVIEWS = [json.loads(line)["text"] for line in (DEFAULT_ARTIFACTS / "heldout.jsonl").read_text().splitlines()[:130]]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(DEFAULT_ARTIFACTS, tmp_path_factory.mktemp("send_texts") / "service.log")
    yield server
    server.stop()


def test_batches_keep_the_order_and_the_last_is_the_rest() -> None:
    chunks = batches(REVIEWS, 64)
    assert [len(chunk) for chunk in chunks] == [64, 64, 2]
    assert [text for chunk in chunks for text in chunk] == REVIEWS
    assert batches([], 64) == []


def test_post_returns_the_status_or_the_error(service: Server) -> None:
    url = f"{service.base_url}/predict"
    assert post(url, REVIEWS[:64], "sentiment.local", 10) == "200"
    # One text more than the service's max_batch_items: its own 4xx, counted as a failure.
    assert post(url, REVIEWS[:65], None, 10) == "422"
    assert post(f"http://127.0.0.1:{free_port()}/predict", REVIEWS[:1], None, 2).startswith("error: ")


def test_summarise_counts_every_request() -> None:
    report = summarise(["200", "200", "422", "error: [Errno 111] Connection refused"], texts=200, seconds=1.234)
    assert report == {
        "requests": 4,
        "texts": 200,
        "status_codes": {"200": 2, "422": 1},
        "errors": {"[Errno 111] Connection refused": 1},
        "failed": 2,
        "seconds": 1.23,
    }


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Every review, 64 a request
      sentiment.platform.send_texts: {url: "{{ url }}", texts: "{{ texts }}", host: sentiment.local}
      register: answered
    - name: Batches larger than the service takes
      sentiment.platform.send_texts: {url: "{{ url }}", texts: "{{ texts }}", batch_size: 65, concurrency: 2}
      register: refused
      ignore_errors: true
    - name: Keep both results
      ansible.builtin.copy:
        dest: "{{ out }}"
        content: "{{ {'answered': answered, 'refused': refused} | to_json }}"
        mode: "0644"
"""


@pytest.mark.slow
def test_the_module_in_a_playbook(service: Server, tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    out = tmp_path / "results.json"
    variables = {"url": f"{service.base_url}/predict", "texts": REVIEWS, "out": str(out)}
    result = run_local_playbook(tmp_path / "play.yml", variables)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text())
    answered, refused = results["answered"], results["refused"]
    assert not answered.get("failed")
    assert not answered["changed"]
    assert answered["report"]["requests"] == 3
    assert answered["report"]["texts"] == 130
    assert answered["report"]["status_codes"] == {"200": 3}
    assert answered["report"]["failed"] == 0
    # 130 texts in batches of 65: both refused by the service, the task failed, the report still there.
    assert refused["failed"] is True
    assert refused["msg"] == "2 of 2 requests got no 200"
    assert refused["report"]["status_codes"] == {"422": 2}
