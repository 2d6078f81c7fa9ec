"""Schemathesis against the live server's OpenAPI document: no request gets a 5xx.

The document is self-contained (every ``$ref`` to an OGC document on another host is a
component of ours, ``tianya/openapi_components.yml``; ``tests/test_openapi.py``), so it is
fuzzed as the server serves it, offline.
Everything is fuzzed for a bounded time (``TIANYA_FUZZ_SECONDS``, default 30 a role), as
the public and as a dispatcher: POST bodies (feature creation, CQL2 JSON queries, process
executions with their work budgets) and coverages included (pygeoapi alone answers
``/collections/dem/coverage?bbox=0,0,0,0`` or a URI ``bbox-crs`` with a 500). The server
is its own, with short process waits, so that a fuzzed run over the pool's bound answers
its 429 within the request timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import requests
from casekit import copy_sample
from conftest import KEYS, LiveServer

MAX_TIME = int(os.environ.get("TIANYA_FUZZ_SECONDS", "30"))


def _st() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "st")
    return exe if os.path.exists(exe) else shutil.which("st") or "st"


@pytest.fixture(scope="module")
def schema_file(sample_gpkg, tmp_path_factory):
    server = LiveServer(
        copy_sample(sample_gpkg, "fuzz"),
        extra_env={"TIANYA_PROCESS_WAIT_SECONDS": "2", "TIANYA_PROCESS_SECONDS": "20"},
    )
    try:
        text = json.dumps(requests.get(server.url + "/openapi?f=json", timeout=60).json())
        # nothing for schemathesis to fetch from another host (tests/test_openapi.py: why)
        assert '"$ref": "http' not in text, "the OpenAPI document refers to another host"
        path = tmp_path_factory.mktemp("fuzz") / "openapi.json"
        path.write_text(text)
        yield server, str(path)
    finally:
        server.stop()


@pytest.mark.parametrize("role", ["dispatcher", None], ids=["dispatcher", "public"])
def test_no_server_errors(schema_file, tmp_path, role):
    pytest.importorskip("schemathesis")
    server, path = schema_file
    cmd = [
        _st(),
        "run",
        path,
        "--url",
        server.url,
        "--checks",
        "not_a_server_error",
        "--max-time",
        str(MAX_TIME),
        "--max-examples",
        "12",
        "--seed",
        "20261125",
        "--workers",
        "4",
        "--request-timeout",
        "30",
        "--phases",
        "examples,coverage,fuzzing",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    if role:
        cmd += ["-H", f"Authorization: Bearer {KEYS[role]}"]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=MAX_TIME + 120, cwd=str(tmp_path)
    )
    tail = out.stdout[-5000:] + out.stderr[-2000:]
    assert "Server error" not in out.stdout, tail
    assert "not_a_server_error" not in out.stdout.split("SUMMARY")[-1] or out.returncode == 0, tail
    assert out.returncode == 0, tail
