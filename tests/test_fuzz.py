"""Schemathesis against the live server's OpenAPI document: no request gets a 5xx.

pygeoapi's document points at remote OGC schemas (schemas.opengis.net, GitHub);
the tests run offline, so those references are replaced by local stand-ins
(string parameters, any-JSON schemas, described responses) before the run.
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
_PARAMS = {
    "featureId": ("path", True),
    "datetime": ("query", False),
    "sortby": ("query", False),
    "subset": ("query", False),
}


def _localise(node):
    """The document with every remote ``$ref`` replaced by a local stand-in."""
    if isinstance(node, list):
        return [_localise(v) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("http"):
        name = ref.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".json")
        if "/parameters/" in ref or name in _PARAMS:
            where, required = _PARAMS.get(name, ("query", False))
            return {"name": name, "in": where, "required": required, "schema": {"type": "string"}}
        if "/responses/" in ref:
            return {"description": name}
        return {}
    return {k: _localise(v) for k, v in node.items()}


def _st() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "st")
    return exe if os.path.exists(exe) else shutil.which("st") or "st"


@pytest.fixture(scope="module")
def schema_file(sample_gpkg, tmp_path_factory):
    server = LiveServer(
        copy_sample(sample_gpkg, "fuzz"),
        extra_env={"TIANYA_PROCESS_WAIT_SECONDS": "2", "TIANYA_PROCESS_SECONDS": "20"},
    )
    doc = requests.get(server.url + "/openapi?f=json", timeout=60).json()
    doc = _localise(doc)
    path = tmp_path_factory.mktemp("fuzz") / "openapi.json"
    path.write_text(json.dumps(doc))
    yield server, str(path)
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
