"""OGC API - Processes - Part 1: Core 1.0 (OGC 18-062r2), requirement by requirement.

Requirement ids are those of the 1.0 standard (OGC 18-062r2, Annex A and §7-§14). Its text is
not stored for the tools we have; the list follows the published 1.0 requirement ids as the OGC
CITE suite (``opengeospatial/ets-ogcapi-processes10``) and implementations declaring them
(crim-ca/weaver's conformance list) name them, and the requirement files of
``opengeospatial/ogcapi-processes`` (``core/requirements/core/REQ_*.adoc``,
``core/requirements/callback/REQ_job-creation-callback.adoc``) for their texts.

Requirements conditional on what our processes do not offer (binary or bounding-box inputs,
several outputs, transmission by reference) are tested by checking, on the live server, that
the condition indeed never arises, and that a request asking for it is refused (400) rather
than answered as if it had been honoured.

Not declared here: ``job-list`` (its 1.0 requirements ask ``/jobs`` to filter by ``type``,
``processID``, ``status``, ``datetime`` and ``duration``; pygeoapi 0.24 filters by none of
them) and ``html`` (job results have no HTML representation of GeoTIFF outputs). ``oas30``
belongs to the OpenAPI module.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from conftest import KEYS

pytestmark = [pytest.mark.both_stores, pytest.mark.timeout(300)]

_CLASS = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/{}"
#: Conformance classes tested here -> every requirement of each (OGC 18-062r2).
CONFORMANCE = {
    _CLASS.format("core"): (
        "/req/core/landingpage-op",
        "/req/core/landingpage-success",
        "/req/core/api-definition-op",
        "/req/core/api-definition-success",
        "/req/core/conformance-op",
        "/req/core/conformance-success",
        "/req/core/http",
        "/req/core/process-list",
        "/req/core/pl-limit-definition",
        "/req/core/pl-limit-response",
        "/req/core/pl-links",
        "/req/core/process-list-success",
        "/req/core/process",
        "/req/core/process-success",
        "/req/core/process-exception/no-such-process",
        "/req/core/process-execute-op",
        "/req/core/process-execute-request",
        "/req/core/process-execute-inputs",
        "/req/core/process-execute-input-inline-object",
        "/req/core/process-execute-input-mixed-type",
        "/req/core/process-execute-input-inline-binary",
        "/req/core/process-execute-input-inline-bbox",
        "/req/core/process-execute-input-array",
        "/req/core/process-execute-input-validation",
        "/req/core/process-execute-default-execution-mode",
        "/req/core/process-execute-auto-execution-mode",
        "/req/core/process-execute-default-outputs",
        "/req/core/process-execute-success-async",
        "/req/core/process-execute-sync-document",
        "/req/core/process-execute-sync-raw-value-one",
        "/req/core/process-execute-sync-raw-value-multi",
        "/req/core/process-execute-sync-raw-ref",
        "/req/core/process-execute-sync-raw-mixed-multi",
        "/req/core/job",
        "/req/core/job-success",
        "/req/core/job-exception-no-such-job",
        "/req/core/job-results",
        "/req/core/job-results-async-document",
        "/req/core/job-results-async-raw-value-one",
        "/req/core/job-results-async-raw-value-multi",
        "/req/core/job-results-async-raw-ref",
        "/req/core/job-results-async-raw-mixed-multi",
        "/req/core/job-results-exception/no-such-job",
        "/req/core/job-results-exception/results-not-ready",
        "/req/core/job-results-failed",
        "/req/core/job-results-success-sync",
    ),
    _CLASS.format("json"): (
        "/req/json/definition",
        "/req/json/content",
    ),
    _CLASS.format("ogc-process-description"): (
        "/req/ogc-process-description/json-encoding",
        "/req/ogc-process-description/inputs-def",
        "/req/ogc-process-description/input-def",
        "/req/ogc-process-description/input-mixed-type",
        "/req/ogc-process-description/outputs-def",
        "/req/ogc-process-description/output-def",
        "/req/ogc-process-description/output-mixed-type",
    ),
    _CLASS.format("callback"): ("/req/callback/job-callback",),
    _CLASS.format("dismiss"): (
        "/req/dismiss/job-dismiss-op",
        "/req/dismiss/job-dismiss-success",
    ),
}

EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
#: One week of incidents: a hot-spots run of well under a second.
WEEK = {"collection": "incidents", "datetime": "2026-11-01T00:00:00Z/2026-11-08T00:00:00Z"}
#: A run that fails on its data (a 400 from the analysis: too few time steps).
FAILING = ("emerging-hot-spots", {"collection": "incidents", "datetime": "2026-11-01/.."})
STATUSES = ("accepted", "running", "successful", "failed", "dismissed")


def _get(srv, path, role=None, **params):
    headers = {"Authorization": f"Bearer {KEYS[role]}"} if role else {}
    url = path if path.startswith("http") else srv.url + path
    return requests.get(url, params=params, headers=headers, timeout=60)


def _execute(srv, pid="hot-spots", inputs=None, asynchronous=False, **doc):
    headers = {"Prefer": "respond-async"} if asynchronous else {}
    return requests.post(
        f"{srv.url}/processes/{pid}/execution",
        json={"inputs": WEEK if inputs is None else inputs, **doc},
        headers=headers,
        timeout=120,
    )


def _wait(url, timeout=120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = requests.get(url, params={"f": "json"}, timeout=30)
        assert r.status_code == 200, r.text
        if r.json()["status"] not in ("accepted", "running"):
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"{url} did not finish")


def _is_exception(r, status: int) -> dict:
    """The body of ``r``, an exception document (exception.yaml: ``type`` required)."""
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert isinstance(body.get("type"), str) and body["type"], body
    return body


def _features(doc) -> list:
    assert doc["type"] == "FeatureCollection"
    return doc["features"]


@pytest.fixture(scope="module")
def srv(live_server):
    return live_server


@pytest.fixture(scope="module")
def landing(srv):
    r = _get(srv, "/", f="json")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def processes(srv):
    r = _get(srv, "/processes", f="json")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def descriptions(srv, processes) -> dict:
    out = {}
    for p in processes["processes"]:
        r = _get(srv, f"/processes/{p['id']}", f="json")
        assert r.status_code == 200, r.text
        out[p["id"]] = r.json()
    return out


@pytest.fixture(scope="module")
def sync_raw(srv):
    r = _execute(srv, response="raw")
    assert r.status_code == 200, r.text
    return r


@pytest.fixture(scope="module")
def async_jobs(srv):
    """Two asynchronous runs of the same request, one ``raw``, one ``document``: their
    201 answers and final status."""
    out = {}
    for response in ("raw", "document"):
        r = _execute(srv, asynchronous=True, response=response)
        assert r.status_code == 201, r.text
        out[response] = (r, _wait(r.headers["Location"]))
    return out


@pytest.fixture(scope="module")
def failed_job(srv):
    pid, inputs = FAILING
    r = _execute(srv, pid, inputs, asynchronous=True)
    assert r.status_code == 201, r.text
    status = _wait(r.headers["Location"])
    assert status["status"] == "failed", status
    return r.headers["Location"], status


# --- landing page, API definition, conformance, HTTP ------------------------------------------


def test_req_core_landingpage_op(srv):
    r = _get(srv, "/")
    assert r.status_code == 200
    assert _get(srv, "/", f="json").status_code == 200


def test_req_core_landingpage_success(srv, landing):
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    for rel in ("service-desc", "conformance", REL + "processes"):
        assert rel in rels, rel
        assert _get(srv, rels[rel]).status_code == 200, rel
    assert "self" in rels


def test_req_core_api_definition_op(srv, landing):
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    assert _get(srv, desc["href"]).status_code == 200


def test_req_core_api_definition_success(srv, landing):
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    r = _get(srv, desc["href"])
    assert r.headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
    doc = r.json()
    assert doc["openapi"].startswith("3.0")
    paths = set(doc["paths"])
    assert {"/processes", "/jobs"} <= paths
    for pid in ("hot-spots", "kernel-density"):  # templated or one path per process
        for tail in ("", "/execution"):
            assert {f"/processes/{pid}{tail}", "/processes/{processId}" + tail} & paths, tail
    assert any(re.fullmatch(r"/jobs/\{\w+\}", p) for p in paths)
    assert any(re.fullmatch(r"/jobs/\{\w+\}/results", p) for p in paths)


def test_req_core_conformance_op(srv):
    assert _get(srv, "/conformance").status_code == 200


def test_req_core_conformance_success(srv):
    r = _get(srv, "/conformance", f="json")
    assert r.headers["Content-Type"].startswith("application/json")
    declared = r.json()["conformsTo"]
    for uri in CONFORMANCE:
        assert uri in declared, uri


def test_req_core_http(srv):
    """HTTP 1.1 (RFC 2616 / 9110): the server answers in HTTP/1.1 with the status codes of
    §7.5 (200 for a resource, 404 for none, 405 for a method the resource does not take)."""
    r = _get(srv, "/processes", f="json")
    assert r.raw.version == 11
    assert _get(srv, "/processes/hot-spots/nothing-here").status_code == 404
    assert requests.put(srv.url + "/processes", timeout=30).status_code == 405


# --- process list and descriptions ------------------------------------------------------------


def test_req_core_process_list(srv, processes):
    assert len(processes["processes"]) >= 1


def test_req_core_pl_limit_definition(srv, processes):
    """``limit``: an integer, minimum 1, maximum 10000 (default 10)."""
    for limit in (1, 10, 10000):
        r = _get(srv, "/processes", f="json", limit=limit)
        assert r.status_code == 200, (limit, r.text)


def test_req_core_pl_limit_response(srv, processes):
    total = len(processes["processes"])
    assert total > 2
    for limit in (1, 2):
        r = _get(srv, "/processes", f="json", limit=limit)
        assert len(r.json()["processes"]) == limit


def test_req_core_pl_links(srv, processes):
    """The list links itself and its other representations; each summary links its
    description."""
    rels = [(link["rel"], link["href"]) for link in processes["links"]]
    assert any(rel == "self" for rel, _ in rels)
    alternates = [href for rel, href in rels if rel == "alternate"]
    assert alternates
    for href in alternates + [href for rel, href in rels if rel == "self"]:
        assert _get(srv, href).status_code == 200, href
    for p in processes["processes"]:
        selfs = [link["href"] for link in p["links"] if link["rel"] == "self"]
        assert selfs and _get(srv, selfs[0]).json()["id"] == p["id"]


def test_req_core_process_list_success(srv, processes):
    """processList.yaml: ``processes`` (processSummary: ``id``, ``version``, optional
    ``jobControlOptions``/``outputTransmission`` from their enumerations) and ``links``."""
    r = _get(srv, "/processes", f="json")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert isinstance(processes["links"], list)
    for p in processes["processes"]:
        assert isinstance(p["id"], str) and isinstance(p["version"], str)
        assert set(p["jobControlOptions"]) <= {"sync-execute", "async-execute", "dismiss"}
        assert set(p["outputTransmission"]) <= {"value", "reference"}
        for link in p["links"]:
            assert link["href"] and link["rel"]


def test_req_core_process(srv, processes):
    for p in processes["processes"]:
        assert _get(srv, f"/processes/{p['id']}").status_code == 200


def test_req_core_process_success(descriptions, processes):
    assert set(descriptions) == {p["id"] for p in processes["processes"]}
    for pid, d in descriptions.items():
        assert d["id"] == pid and isinstance(d["version"], str)
        assert isinstance(d["inputs"], dict) and isinstance(d["outputs"], dict)
        execute = [link for link in d["links"] if link["rel"] == REL + "execute"]
        assert execute and f"/processes/{pid}/execution" in execute[0]["href"]


def test_req_core_process_exception_no_such_process(srv):
    body = _is_exception(_get(srv, "/processes/no-such-process", f="json"), 404)
    assert body["type"] == EXCEPTIONS + "no-such-process"


# --- execution --------------------------------------------------------------------------------


def test_req_core_process_execute_op(srv, sync_raw):
    assert sync_raw.status_code == 200
    assert _features(sync_raw.json())


def test_req_core_process_execute_request(srv, sync_raw):
    """An execute.yaml document (``inputs``, ``outputs`` with a transmission mode,
    ``response``) is taken; one that is not an object is a 400."""
    r = _execute(srv, outputs={"result": {"transmissionMode": "value"}}, response="raw")
    assert r.status_code == 200, r.text
    assert r.json()["features"] == sync_raw.json()["features"]
    bad = requests.post(
        f"{srv.url}/processes/hot-spots/execution",
        data="[1]",
        timeout=30,
        headers={"Content-Type": "application/json"},
    )
    _is_exception(bad, 400)


def test_req_core_process_execute_inputs(srv, sync_raw):
    """Inputs are named by their ids in the description; an unknown one is refused."""
    body = _is_exception(_execute(srv, inputs={**WEEK, "no_such_input": 1}), 400)
    assert "no_such_input" in body["description"]


def test_req_core_process_execute_input_inline_object(srv, sync_raw):
    """``filter`` (an object, CQL2 JSON, in-line) selects as its CQL2 text does."""
    as_text = _execute(srv, inputs={**WEEK, "filter": "category <> 'road_cleaning'"})
    as_object = _execute(
        srv,
        inputs={
            **WEEK,
            "filter": {"op": "<>", "args": [{"property": "category"}, "road_cleaning"]},
        },
    )
    assert as_text.status_code == as_object.status_code == 200, as_object.text
    assert as_object.json()["features"] == as_text.json()["features"]
    assert as_object.json()["features"] != sync_raw.json()["features"]


def test_req_core_process_execute_input_mixed_type(srv, descriptions):
    """An input of several types (``filter``: ``oneOf`` string or object) takes each."""
    schema = descriptions["hot-spots"]["inputs"]["filter"]["schema"]
    assert {s["type"] for s in schema["oneOf"]} == {"string", "object"}
    for value in (
        "category = 'manhole_cover' OR category <> 'manhole_cover'",
        {"op": "<>", "args": [{"property": "category"}, "x"]},
    ):
        r = _execute(srv, inputs={**WEEK, "filter": value})
        assert r.status_code == 200, r.text
    assert _is_exception(_execute(srv, inputs={**WEEK, "filter": 5}), 400)


def _input_schemas(descriptions):
    for d in descriptions.values():
        for name, spec in d["inputs"].items():
            yield d["id"], name, spec


def test_req_core_process_execute_input_inline_binary(srv, descriptions):
    """Conditional on a binary input (contentEncoding / format binary): none is offered, and a
    base64 qualified value for a string input is not taken as one."""
    for _, _, spec in _input_schemas(descriptions):
        text = json.dumps(spec["schema"])
        assert "contentEncoding" not in text and '"binary"' not in text
    qualified = {"value": "aW5jaWRlbnRz", "encoding": "base64", "mediaType": "text/plain"}
    _is_exception(_execute(srv, inputs={**WEEK, "collection": qualified}), 400)


def test_req_core_process_execute_input_inline_bbox(srv, descriptions):
    """Conditional on a bounding-box input (format ``ogc-bbox``): none is offered; a bbox
    object for another input is refused."""
    for _, _, spec in _input_schemas(descriptions):
        assert "ogc-bbox" not in json.dumps(spec["schema"])
    bbox = {
        "bbox": [109.4, 18.2, 109.6, 18.4],
        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    }
    _is_exception(_execute(srv, inputs={**WEEK, "collection": bbox}), 400)


def test_req_core_process_execute_input_array(srv, descriptions):
    """Conditional on an input of maximum cardinality above one: none is offered; an array
    for a single-valued input is refused."""
    for _, _, spec in _input_schemas(descriptions):
        assert spec.get("maxOccurs", 1) == 1
    _is_exception(_execute(srv, inputs={**WEEK, "collection": ["incidents", "incidents"]}), 400)


def test_req_core_process_execute_input_validation(srv):
    """A value against the input's schema is an exception naming the input."""
    body = _is_exception(_execute(srv, inputs={**WEEK, "collection": "no-such-layer"}), 400)
    assert "no-such-layer" in body["description"]
    body = _is_exception(_execute(srv, inputs={**WEEK, "cell_size": "wide"}), 400)
    assert "cell_size" in body["description"]


def test_req_core_process_execute_default_execution_mode(srv, descriptions, sync_raw):
    """Without ``Prefer``, a process that offers sync-execute runs synchronously (200)."""
    assert "sync-execute" in descriptions["hot-spots"]["jobControlOptions"]
    assert sync_raw.status_code == 200


def test_req_core_process_execute_auto_execution_mode(srv, descriptions, async_jobs):
    """``Prefer: respond-async`` on a process that offers async-execute: 201 and a job."""
    assert "async-execute" in descriptions["hot-spots"]["jobControlOptions"]
    r, _ = async_jobs["raw"]
    assert r.status_code == 201
    assert r.headers.get("Preference-Applied") == "respond-async"


def test_req_core_process_execute_default_outputs(srv, descriptions):
    """No ``outputs`` member: every output of the description is returned."""
    r = _execute(srv, response="document")
    assert r.status_code == 200, r.text
    assert set(r.json()) == set(descriptions["hot-spots"]["outputs"])


def test_req_core_process_execute_success_async(srv, async_jobs):
    r, final = async_jobs["raw"]
    assert r.status_code == 201
    location = r.headers["Location"]
    body = r.json()
    assert location.endswith(f"/jobs/{body['jobID']}")
    assert body["type"] == "process" and body["status"] in STATUSES
    assert final["status"] == "successful"


def test_req_core_process_execute_sync_document(srv, sync_raw):
    r = _execute(srv, response="document")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    result = r.json()["result"]
    assert result["mediaType"] == "application/geo+json"
    assert result["value"]["features"] == sync_raw.json()["features"]


def test_req_core_process_execute_sync_raw_value_one(srv, sync_raw, descriptions):
    media = descriptions["hot-spots"]["outputs"]["result"]["schema"]["contentMediaType"]
    assert sync_raw.headers["Content-Type"].split(";")[0] == media
    assert _features(sync_raw.json())


def _one_output_each(descriptions):
    for d in descriptions.values():
        assert len(d["outputs"]) == 1, d["id"]


def test_req_core_process_execute_sync_raw_value_multi(srv, descriptions):
    """Conditional on more than one output requested: every process has one output, and an
    output it does not describe is refused (not silently left out)."""
    _one_output_each(descriptions)
    body = _is_exception(_execute(srv, outputs={"result": {}, "other": {}}), 400)
    assert "other" in body["description"]


def _value_only(descriptions):
    for d in descriptions.values():
        assert d["outputTransmission"] == ["value"], d["id"]


def test_req_core_process_execute_sync_raw_ref(srv, descriptions):
    """Conditional on transmission by reference: no process offers it, and asking for it is a
    400 (it was answered by value, as if honoured)."""
    _value_only(descriptions)
    body = _is_exception(_execute(srv, outputs={"result": {"transmissionMode": "reference"}}), 400)
    assert "reference" in body["description"]


def test_req_core_process_execute_sync_raw_mixed_multi(srv, descriptions):
    """Conditional on several outputs, some by reference: neither is offered."""
    _one_output_each(descriptions)
    _value_only(descriptions)


# --- jobs ---------------------------------------------------------------------------------


def test_req_core_job(srv, async_jobs):
    r, _ = async_jobs["raw"]
    assert _get(srv, r.headers["Location"], f="json").status_code == 200


def test_req_core_job_success(srv, async_jobs):
    """statusInfo.yaml: ``jobID``, ``status`` (its enumeration), ``type: process``; links."""
    r, _ = async_jobs["raw"]
    got = _get(srv, r.headers["Location"], f="json")
    assert got.headers["Content-Type"].startswith("application/json")
    body = got.json()
    assert body["jobID"] == r.json()["jobID"] and body["type"] == "process"
    assert body["status"] == "successful" and body["processID"] == "hot-spots"
    results = [link for link in body["links"] if link["rel"] == REL + "results"]
    assert results and _get(srv, results[0]["href"]).status_code == 200


def test_req_core_job_exception_no_such_job(srv):
    body = _is_exception(_get(srv, f"/jobs/{uuid.uuid4()}", f="json"), 404)
    assert body["type"] == EXCEPTIONS + "no-such-job"


def test_req_core_job_results(srv, async_jobs):
    r, _ = async_jobs["raw"]
    assert _get(srv, r.headers["Location"] + "/results", f="json").status_code == 200


def test_req_core_job_results_async_document(srv, async_jobs, sync_raw):
    r, final = async_jobs["document"]
    assert final["status"] == "successful"
    got = _get(srv, r.headers["Location"] + "/results", f="json")
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("application/json")
    result = got.json()["result"]
    assert result["mediaType"] == "application/geo+json"
    assert _features(result["value"]) == sync_raw.json()["features"]


def test_req_core_job_results_async_raw_value_one(srv, async_jobs, sync_raw):
    r, _ = async_jobs["raw"]
    got = _get(srv, r.headers["Location"] + "/results")
    assert got.status_code == 200
    assert got.headers["Content-Type"].split(";")[0] == "application/geo+json"

    def key(f):
        return json.dumps(f, sort_keys=True)

    assert sorted(map(key, _features(got.json()))) == sorted(map(key, sync_raw.json()["features"]))


def test_req_core_job_results_async_raw_value_multi(srv, descriptions):
    _one_output_each(descriptions)
    r = _execute(srv, asynchronous=True, outputs={"result": {}, "other": {}})
    _is_exception(r, 400)


def test_req_core_job_results_async_raw_ref(srv, descriptions):
    _value_only(descriptions)
    r = _execute(srv, asynchronous=True, outputs={"result": {"transmissionMode": "reference"}})
    _is_exception(r, 400)


def test_req_core_job_results_async_raw_mixed_multi(descriptions):
    _one_output_each(descriptions)
    _value_only(descriptions)


def test_req_core_job_results_exception_no_such_job(srv):
    body = _is_exception(_get(srv, f"/jobs/{uuid.uuid4()}/results", f="json"), 404)
    assert body["type"] == EXCEPTIONS + "no-such-job"


def test_req_core_job_results_exception_results_not_ready(srv):
    """A job still running: 404 ``result-not-ready`` (a running job of an admin is put in
    the server's job store, as a worker would)."""
    from tianya.plugins.jobstore import open_job_store

    store = open_job_store(os.environ["TIANYA_JOBS"], srv.data)
    job_id = f"running-{uuid.uuid4()}"
    now = "2026-01-01T00:00:00Z"
    job = {
        "type": "process", "identifier": job_id, "process_id": "hot-spots",
        "created": now, "started": now, "updated": now, "finished": None,
        "status": "running", "location": None, "mimetype": "application/octet-stream",
        "message": "running", "progress": 50,
    }  # fmt: skip
    store.add(job, ("admin", "admin"), restricted=False, host="test-host", pid=os.getpid())
    try:
        r = _get(srv, f"/jobs/{job_id}/results", "admin", f="json")
        body = _is_exception(r, 404)
        assert body["type"] == EXCEPTIONS + "result-not-ready"
    finally:
        store.delete(job_id)


def test_req_core_job_results_failed(srv, failed_job):
    """A failed job's results: the exception of its failure, with the status and type of its
    reason (the analysis refused its data: 400 InvalidParameterValue, saying why). pygeoapi
    answered any failed job with a generic 400 "job failed"."""
    location, status = failed_job
    body = _is_exception(_get(srv, location + "/results", f="json"), 400)
    assert body["type"] == "InvalidParameterValue"
    assert "time steps" in body["description"]
    assert body["description"] in status["message"]


def test_req_core_job_results_failed_without_a_recorded_reason(srv):
    """A job that failed with no reason recorded (interrupted by a restart, its result too
    large to keep) is a fault of the server: 500 ``NoApplicableCode`` with the job's message."""
    from tianya.plugins.jobstore import open_job_store

    store = open_job_store(os.environ["TIANYA_JOBS"], srv.data)
    job_id = f"failed-{uuid.uuid4()}"
    now = "2026-01-01T00:00:00Z"
    message = "the server stopped while the job ran; submit it again"
    job = {
        "type": "process", "identifier": job_id, "process_id": "hot-spots",
        "created": now, "started": now, "updated": now, "finished": now,
        "status": "failed", "location": None, "mimetype": "application/octet-stream",
        "message": message, "progress": 5,
    }  # fmt: skip
    store.add(job, ("admin", "admin"), restricted=False, host="test-host", pid=os.getpid())
    try:
        body = _is_exception(_get(srv, f"/jobs/{job_id}/results", "admin", f="json"), 500)
        assert body["type"] == "NoApplicableCode" and body["description"] == message
    finally:
        store.delete(job_id)


def test_req_core_job_results_success_sync(srv, sync_raw):
    """A synchronous run's job is linked (``rel=monitor``) and holds a successful run."""
    monitor = sync_raw.links["monitor"]["url"]
    assert monitor == sync_raw.headers["Location"]
    assert _get(srv, monitor, f="json").json()["status"] == "successful"


# --- JSON -------------------------------------------------------------------------------------


def test_req_json_definition(srv, sync_raw, async_jobs):
    """Every resource of the API answers ``application/json`` when asked for it."""
    r, _ = async_jobs["document"]
    for path in ("/", "/conformance", "/processes", "/processes/hot-spots", r.headers["Location"]):
        got = requests.get(
            path if path.startswith("http") else srv.url + path,
            headers={"Accept": "application/json"},
            timeout=30,
        )
        assert got.status_code == 200, path
        assert got.headers["Content-Type"].startswith("application/json"), path


def test_req_json_content(srv, landing, processes, descriptions):
    """The JSON of each resource follows its schema: required members of landingPage,
    confClasses, processList, process, statusInfo and exception."""
    assert isinstance(landing["links"], list)
    assert isinstance(_get(srv, "/conformance", f="json").json()["conformsTo"], list)
    assert isinstance(processes["processes"], list) and isinstance(processes["links"], list)
    for d in descriptions.values():
        assert {"id", "version", "inputs", "outputs"} <= set(d)
    body = _is_exception(_get(srv, "/processes/none", f="json"), 404)
    assert set(body) >= {"type"}


# --- OGC process description ------------------------------------------------------------------


def test_req_ogc_process_description_json_encoding(descriptions):
    """process.yaml: descriptionType members (``id``, ``version``, optional title, keywords,
    ``jobControlOptions``, ``outputTransmission``, ``links``) plus ``inputs``/``outputs``."""
    for d in descriptions.values():
        assert isinstance(d["title"], str) and isinstance(d.get("keywords", []), list)
        assert set(d["jobControlOptions"]) <= {"sync-execute", "async-execute", "dismiss"}
        assert all(isinstance(link["href"], str) for link in d["links"])


def test_req_ogc_process_description_inputs_def(descriptions):
    """``inputs`` is an object keyed by input id."""
    for d in descriptions.values():
        assert isinstance(d["inputs"], dict) and d["inputs"]
        assert all(isinstance(k, str) and k for k in d["inputs"])


def test_req_ogc_process_description_input_def(descriptions):
    """inputDescription.yaml: a ``schema``; ``minOccurs``/``maxOccurs`` integers when given."""
    for _, name, spec in _input_schemas(descriptions):
        assert isinstance(spec["schema"], dict), name
        assert isinstance(spec.get("minOccurs", 1), int)
        assert spec.get("maxOccurs", 1) == "unbounded" or isinstance(spec.get("maxOccurs", 1), int)


def test_req_ogc_process_description_input_mixed_type(descriptions):
    """An input of several types describes them with ``oneOf``."""
    mixed = [s["schema"] for _, _, s in _input_schemas(descriptions) if "oneOf" in s["schema"]]
    assert mixed
    for schema in mixed:
        assert all(isinstance(alt, dict) and "type" in alt for alt in schema["oneOf"])


def test_req_ogc_process_description_outputs_def(descriptions):
    for d in descriptions.values():
        assert isinstance(d["outputs"], dict) and d["outputs"]


def test_req_ogc_process_description_output_def(descriptions):
    """outputDescription.yaml: a ``schema`` naming the media type of the value."""
    for d in descriptions.values():
        for spec in d["outputs"].values():
            assert isinstance(spec["schema"], dict)
            media = spec["schema"]["contentMediaType"]
            assert isinstance(media, str) and "/" in media


def test_req_ogc_process_description_output_mixed_type(descriptions):
    """Conditional on an output of several types (``oneOf``): each output has one type."""
    for d in descriptions.values():
        for spec in d["outputs"].values():
            assert "oneOf" not in spec["schema"] and "type" in spec["schema"]


# --- callback ---------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        size = int(self.headers.get("Content-Length") or 0)
        _Receiver.received.append((self.path, json.loads(self.rfile.read(size) or b"null")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_req_callback_job_callback(srv, monkeypatch):
    """Callbacks for jobs: an execute request with a ``subscriber`` is taken (201) and its job
    runs to its end; the manager posts the results to ``successUri``, the failure's exception
    to ``failedUri`` and a note to ``inProgressUri`` (delivered here to a local receiver: the
    live server never calls back to an internal address)."""
    import types

    from pygeoapi.util import Subscriber

    from tianya.plugins import jobs

    subscriber = {
        "successUri": "https://callback.example.org/ok",
        "failedUri": "https://callback.example.org/failed",
    }
    r = _execute(srv, asynchronous=True, subscriber=subscriber)
    assert r.status_code == 201, r.text
    assert _wait(r.headers["Location"])["status"] == "successful"

    receiver = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{receiver.server_address[1]}"
    monkeypatch.setattr(jobs, "is_request_allowed", lambda url, allow_internal: True)
    _Receiver.received.clear()
    manager = types.SimpleNamespace(processor=None)
    manager._notify = lambda url, data: jobs.JobManager._notify(manager, url, data)
    sub = Subscriber(
        success_uri=f"{base}/ok", in_progress_uri=f"{base}/run", failed_uri=f"{base}/no"
    )
    outputs = {"type": "FeatureCollection", "features": []}
    failure = {"type": "InvalidParameterValue", "code": "InvalidParameterValue", "description": "x"}
    try:
        jobs.JobManager._send_in_progress_notification(manager, sub)
        jobs.JobManager._send_success_notification(manager, sub, outputs=outputs)
        jobs.JobManager._send_failed_notification(manager, sub, failure)
    finally:
        receiver.shutdown()
    assert dict(_Receiver.received) == {"/run": {}, "/ok": outputs, "/no": failure}


# --- dismiss ----------------------------------------------------------------------------------


def test_req_dismiss_job_dismiss_op(srv):
    """DELETE /jobs/{jobID}: a finished job is dismissed (then gone: 404 no-such-job), and
    one that does not exist is 404 ``no-such-job``."""
    r = _execute(srv, asynchronous=True)
    assert r.status_code == 201, r.text
    _wait(r.headers["Location"])
    assert requests.delete(r.headers["Location"], timeout=30).status_code == 200
    body = _is_exception(_get(srv, r.headers["Location"], f="json"), 404)
    assert body["type"] == EXCEPTIONS + "no-such-job"
    gone = requests.delete(f"{srv.url}/jobs/{uuid.uuid4()}", timeout=30)
    assert _is_exception(gone, 404)["type"] == EXCEPTIONS + "no-such-job"


def test_req_dismiss_job_dismiss_success(srv):
    """200 with a statusInfo document (``jobID``, ``type: process``, ``status: dismissed``)
    as JSON; pygeoapi's had no ``type`` and went out as ``text/html``."""
    r = _execute(srv, asynchronous=True)
    assert r.status_code == 201, r.text
    _wait(r.headers["Location"])
    got = requests.delete(r.headers["Location"], timeout=30)
    assert got.status_code == 200
    assert got.headers["Content-Type"].startswith("application/json")
    body = got.json()
    assert body["jobID"] == r.json()["jobID"]
    assert body["type"] == "process" and body["status"] == "dismissed"
