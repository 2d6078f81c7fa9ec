"""OGC API - Processes - Part 1 (18-062r2), class OpenAPI 3.0, against a live server on both stores.

The API definition describes the processes and jobs resources as the server answers them:
the process list, each process's description, a synchronous and an asynchronous execution,
a job's status, results and dismissal, and their errors (status, media type, body against
the schema, headers: :mod:`oas30kit`). The same requirement ids of Common's class are in
``test_conformance_oas30.py``.
"""

from __future__ import annotations

import time

import pytest
import requests
from oas30kit import (
    OPENAPI_JSON,
    Probe,
    document,
    landing_links,
    operations,
    problems,
    spec_errors,
)

from layers.cases import MAX_BODY

pytestmark = pytest.mark.both_stores

#: Conformance classes tested here -> every requirement of each (OGC API - Processes - Part 1:
#: Core, 18-062r2, requirements class OpenAPI 3.0: core/requirements/oas30/).
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/oas30": (
        "/req/oas30/oas-definition-1",
        "/req/oas30/oas-definition-2",
        "/req/oas30/oas-impl",
        "/req/oas30/completeness",
        "/req/oas30/exceptions-codes",
        "/req/oas30/security",
    ),
}

_RUN = "/processes/local-moran/execution"
#: A quick run: Moran's I of 44 community populations, no permutations.
_INPUTS = {"inputs": {"collection": "communities", "field": "population", "permutations": 0}}
_TOO_BIG = b"{" + b" " * (MAX_BODY + 1) + b"}"

SUCCESSES = [
    Probe("GET", "/processes?f=json", "/processes", 200),
    Probe("GET", "/processes/hot-spots?f=json", "/processes/hot-spots", 200),
    Probe("GET", "/processes/local-moran?f=html", "/processes/local-moran", 200),
    Probe("GET", "/jobs?f=json", "/jobs", 200, "admin"),
    Probe("POST", _RUN, _RUN, 200, body=_INPUTS, content_type="application/json"),
]

ERRORS = [
    Probe("GET", "/processes?f=xml", "/processes", 400),
    Probe("GET", "/processes?f=json", "/processes", 401, "nope"),
    Probe("GET", "/processes/hot-spots?f=json", "/processes/hot-spots", 401, "nope"),
    Probe("POST", _RUN, _RUN, 400, body={"inputs": {"bogus": 1}}, content_type="application/json"),
    Probe(
        "POST",
        "/processes/hot-spots/execution",
        "/processes/hot-spots/execution",
        401,
        body={"inputs": {"collection": "poverty_relief"}},
        content_type="application/json",
    ),
    Probe(
        "POST",
        "/processes/hot-spots/execution",
        "/processes/hot-spots/execution",
        403,
        "reporter",
        {"inputs": {"collection": "poverty_relief"}},
        "application/json",
    ),
    Probe("POST", _RUN, _RUN, 413, body=_TOO_BIG, content_type="application/json"),
    Probe("GET", "/jobs?f=xml", "/jobs", 400),
    Probe("GET", "/jobs/nope?f=json", "/jobs/{jobId}", 404),
    Probe("GET", "/jobs/nope/results?f=json", "/jobs/{jobId}/results", 404),
    Probe("DELETE", "/jobs/nope", "/jobs/{jobId}", 404),
]


@pytest.fixture(scope="module")
def doc(live_server):
    return document(live_server, "admin")


@pytest.fixture(scope="module")
def job(live_server):
    """An asynchronous run of :data:`_RUN`, finished: ``(its 201 answer, its job id)``."""
    r = requests.post(
        live_server.url + _RUN, json=_INPUTS, headers={"Prefer": "respond-async"}, timeout=120
    )
    assert r.status_code == 201, r.text[:300]
    job_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    deadline = time.time() + 120
    while time.time() < deadline:
        status = live_server.get(f"/jobs/{job_id}?f=json").json()["status"]
        if status not in ("accepted", "running"):
            break
        time.sleep(0.5)
    assert status == "successful", status
    return r, job_id


def test_req_oas30_oas_definition_1(live_server):
    """The landing page links the definition as ``service-desc``
    (``application/vnd.oai.openapi+json;version=3.0``) and ``service-doc`` (``text/html``),
    and each link answers its media type."""
    links = landing_links(live_server)
    assert links["service-desc"]["type"].replace(" ", "") == OPENAPI_JSON
    assert links["service-doc"]["type"] == "text/html"
    r = requests.get(links["service-desc"]["href"], timeout=60)
    assert r.status_code == 200
    assert r.headers["Content-Type"].replace(" ", "").lower() == OPENAPI_JSON.lower()
    assert "/processes" in r.json()["paths"] and "/jobs/{jobId}" in r.json()["paths"]
    r = requests.get(links["service-doc"]["href"], timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")


def test_req_oas30_oas_definition_2(live_server):
    doc = document(live_server, None)
    assert doc["openapi"].startswith("3.0.") and spec_errors(doc) == []


def test_req_oas30_oas_impl(live_server, doc):
    """Every process the document describes is offered: its description answers the
    documented 200, and names the same inputs the document's execution request accepts."""
    found = []
    for path, _, _ in operations(doc, r"/processes/[^/]+"):
        probe = Probe("GET", f"{path}?f=json", path, 200)
        r = probe.send(live_server)
        found += problems(doc, probe, r)
        assert f"{path}/execution" in doc["paths"], path
        assert r.json()["id"] == path.rsplit("/", 1)[1]
    assert found == []
    listed = {p["id"] for p in live_server.get("/processes?f=json").json()["processes"]}
    documented = {p.rsplit("/", 1)[1] for p, _, _ in operations(doc, r"/processes/[^/]+")}
    assert listed == documented


@pytest.mark.parametrize("probe", SUCCESSES, ids=str)
def test_req_oas30_completeness(live_server, doc, probe):
    assert problems(doc, probe, probe.send(live_server)) == []


def test_req_oas30_completeness_jobs(live_server, doc, job):
    """An asynchronous execution's 201, the job's status and results, and its dismissal are
    the document's."""
    created, job_id = job
    run = Probe("POST", _RUN, _RUN, 201)
    assert problems(doc, run, created) == []
    steps = [
        Probe("GET", f"/jobs/{job_id}?f=json", "/jobs/{jobId}", 200),
        Probe("GET", f"/jobs/{job_id}/results?f=json", "/jobs/{jobId}/results", 200),
        Probe("DELETE", f"/jobs/{job_id}", "/jobs/{jobId}", 200),
    ]
    found = []
    for probe in steps:
        found += problems(doc, probe, probe.send(live_server))
    assert found == []


@pytest.mark.parametrize("probe", ERRORS, ids=str)
def test_req_oas30_exceptions_codes(live_server, doc, probe):
    """Each error on the processes and jobs paths has its documented response."""
    assert problems(doc, probe, probe.send(live_server)) == []


def test_req_oas30_exceptions_codes_every_processes_operation(doc):
    """Every processes and jobs operation lists 400, 401 and 500; an execution also 403 (data
    the caller may not read), 404, 408, 413 and 429 (too many jobs)."""
    missing = []
    for path, method, op in operations(doc, r"/(processes|jobs)(/.*)?", ("get", "post", "delete")):
        need = {"400", "401", "500"}
        if method == "post":
            need |= {"403", "404", "408", "413", "429"}
        lacking = need - set(op["responses"])
        if lacking:
            missing.append(f"{method.upper()} {path}: {sorted(lacking)}")
    assert missing == []


def test_req_oas30_security(live_server, doc):
    """The processes need no key (the API's security lists the anonymous ``{}``), and say
    how a key is sent for a process on personal data: running one anonymously is the
    documented 401 with the bearer challenge."""
    assert {} in doc["security"]
    assert {"bearerKey": []} in doc["security"]
    for _, _, op in operations(doc, r"/processes(/.*)?", ("get", "post")):
        assert "security" not in op or {} in op["security"]
    r = requests.post(
        f"{live_server.url}/processes/hot-spots/execution",
        json={"inputs": {"collection": "poverty_relief"}},
        timeout=60,
    )
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
