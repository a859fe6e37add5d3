"""$batch: multipart/mixed bodies written by hand (CRLF, as Dataverse documents them), change
sets with Content-ID references, atomicity, continue-on-error, and malformed batches."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from reconciler.emulator.faults import NOT_FOUND, PAYLOAD_ERROR, VALIDATION

CRLF = "\r\n"
BASE = "http://org.local/api/data/v9.2/"
BATCH = "batch_80dd1615-2a10-428a-bb6f-0e559792721f"


# -- building requests ---------------------------------------------------------------------
def request(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    *,
    content_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    """One application/http part; ``url`` relative to the Web API root unless it is ``$n``."""
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding:binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    target = url if url.startswith("$") else f"{BASE}{url}"
    lines += ["", f"{method} {target} HTTP/1.1"]
    if body is not None:
        lines.append("Content-Type: application/json; type=entry")
    else:
        lines.append("Accept: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["", json.dumps(body, indent=1) if body is not None else ""]
    return CRLF.join(lines)


def multipart(boundary: str, parts: list[str]) -> str:
    return "".join(f"--{boundary}{CRLF}{p}{CRLF}" for p in parts) + f"--{boundary}--{CRLF}"


def changeset(parts: list[str], boundary: str = "changeset_BBB456") -> str:
    return f"Content-Type: multipart/mixed; boundary={boundary}{CRLF}{CRLF}" + multipart(
        boundary, parts
    )


# -- reading answers -----------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    content_id: str | None


def _headers(block: str) -> dict[str, str]:
    headers = {}
    for line in block.split(CRLF):
        name, sep, value = line.partition(":")
        assert sep, line
        headers[name.strip().lower()] = value.strip()
    return headers


def parse_multipart(content_type: str, text: str) -> list[Answer | list[Answer]]:
    match = re.match(r"multipart/mixed; boundary=(\S+)$", content_type)
    assert match is not None, content_type
    boundary = match[1]
    chunks = text.split(f"--{boundary}")
    assert chunks[0] == ""
    assert chunks[-1] == f"--{CRLF}"
    answers: list[Answer | list[Answer]] = []
    for chunk in chunks[1:-1]:
        assert chunk.startswith(CRLF)
        head, _, rest = chunk[len(CRLF) :].partition(CRLF + CRLF)
        mime = _headers(head)
        if mime["content-type"].startswith("multipart/mixed"):
            inner = parse_multipart(mime["content-type"], rest)
            assert all(isinstance(a, Answer) for a in inner)
            answers.append(inner)  # type: ignore[arg-type]
            continue
        assert mime["content-type"] == "application/http"
        assert mime["content-transfer-encoding"] == "binary"
        status_head, _, body = rest.partition(CRLF + CRLF)
        status_line, _, header_block = status_head.partition(CRLF)
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1"
        headers = _headers(header_block) if header_block else {}
        body = body.removesuffix(CRLF)
        answers.append(
            Answer(int(status), headers, json.loads(body) if body else None, mime.get("content-id"))
        )
    return answers


def send(org, parts: list[str], *, prefer: str | None = None, boundary: str = BATCH):
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}"}
    if prefer:
        headers["Prefer"] = prefer
    response = org.request(
        "POST", "$batch", content=multipart(boundary, parts).encode(), headers=headers
    )
    return response


def run(org, parts: list[str], *, prefer: str | None = None) -> list[Answer | list[Answer]]:
    response = send(org, parts, prefer=prefer)
    assert response.status_code == 200, response.text
    return parse_multipart(response.headers["Content-Type"], response.text)


def entity_id(answer: Answer) -> str:
    match = re.search(r"\(([0-9a-f-]{36})\)$", answer.headers["odata-entityid"])
    assert match is not None
    return match[1]


# -- tests ---------------------------------------------------------------------------------
def test_top_level_requests_are_answered_in_order(org):
    queue = org.new_id()

    answers = run(
        org,
        [
            request("GET", "WhoAmI"),
            request("POST", "queues", {"queueid": queue, "name": "Batched"}, content_id="7"),
            request("GET", f"queues({queue})?$select=name"),
            request("GET", "queues?$filter=name%20eq%20'Batched'&$select=name"),
        ],
    )

    assert [a.status for a in answers] == [200, 204, 200, 200]
    who, created, single, listed = answers
    assert who.body["UserId"] == org.get("WhoAmI").json()["UserId"]
    assert created.content_id == "7"
    assert created.headers["odata-entityid"] == f"{BASE}queues({queue})"
    assert created.body is None
    assert single.body["name"] == "Batched"
    assert single.headers["etag"] == single.body["@odata.etag"]
    assert [r["queueid"] for r in listed.body["value"]] == [queue]


def test_a_change_set_creates_a_contract_and_a_rule_set_bound_to_it_by_content_id(org):
    answers = run(
        org,
        [
            changeset(
                [
                    request(
                        "POST",
                        "msdyn_decisioncontracts",
                        {"msdyn_name": "Contract", "msdyn_uniquename": "new_contract"},
                        content_id="1",
                    ),
                    request(
                        "POST",
                        "msdyn_decisionrulesets",
                        {
                            "msdyn_name": "Rules",
                            "msdyn_inputcontractid@odata.bind": "$1",
                            "msdyn_outputcontractid@odata.bind": "$1",
                        },
                        content_id="2",
                    ),
                    request("PATCH", "$1", {"msdyn_name": "Contract (renamed)"}, content_id="3"),
                ]
            )
        ],
    )

    (changes,) = answers
    assert isinstance(changes, list)
    assert [(a.status, a.content_id) for a in changes] == [(204, "1"), (204, "2"), (204, "3")]
    contract, ruleset = entity_id(changes[0]), entity_id(changes[1])
    assert entity_id(changes[2]) == contract
    row = org.read("msdyn_decisionrulesets", ruleset)
    assert row["_msdyn_inputcontractid_value"] == contract
    assert row["_msdyn_outputcontractid_value"] == contract
    assert org.read("msdyn_decisioncontracts", contract)["msdyn_name"] == "Contract (renamed)"


def test_a_failing_change_set_rolls_back_and_answers_the_failure(org):
    first, second = org.new_id(), org.new_id()

    answers = run(
        org,
        [
            changeset(
                [
                    request("POST", "queues", {"queueid": first, "name": "One"}, content_id="1"),
                    request("POST", "queues", {"queueid": second, "name": "Two"}, content_id="2"),
                    request("POST", "queues", {"name": "Three", "nosuch": 1}, content_id="3"),
                ]
            )
        ],
    )

    (failure,) = answers
    assert isinstance(failure, Answer)
    assert failure.status == 400
    assert failure.content_id == "3"
    assert failure.body["error"]["code"] == VALIDATION  # an unknown property
    assert org.missing("queues", first)
    assert org.missing("queues", second)


def test_a_change_set_rolls_back_updates_and_deletes_too(org):
    kept = org.queue("Kept")
    renamed = org.queue("Renamed")
    before = [org.read("queues", kept), org.read("queues", renamed)]

    answers = run(
        org,
        [
            changeset(
                [
                    request("DELETE", f"queues({kept})"),
                    request("PATCH", f"queues({renamed})", {"name": "Changed"}),
                    request(
                        "PATCH", f"queues({renamed})", {"name": "x"}, headers={"If-Match": 'W/"1"'}
                    ),
                ]
            )
        ],
    )

    (failure,) = answers
    assert isinstance(failure, Answer)
    assert failure.status == 412
    assert [org.read("queues", kept), org.read("queues", renamed)] == before


def test_a_reference_to_an_unknown_content_id_fails_the_change_set(org):
    record = org.new_id()

    answers = run(
        org,
        [
            changeset(
                [
                    request("POST", "queues", {"queueid": record, "name": "One"}, content_id="1"),
                    request(
                        "POST",
                        "msdyn_liveworkstreams",
                        {"msdyn_name": "W", "msdyn_defaultqueue@odata.bind": "$9"},
                        content_id="2",
                    ),
                ]
            )
        ],
    )

    (failure,) = answers
    assert isinstance(failure, Answer)
    assert failure.status == 400
    assert failure.body["error"]["code"] == PAYLOAD_ERROR
    assert org.missing("queues", record)


def batch_of_three(org):
    first, third = org.new_id(), org.new_id()
    parts = [
        request("POST", "queues", {"queueid": first, "name": "First"}),
        request(
            "PATCH",
            "queues(00000000-0000-0000-0000-000000000009)",
            {"name": "x"},
            headers={"If-Match": "*"},
        ),
        request("POST", "queues", {"queueid": third, "name": "Third"}),
    ]
    return parts, first, third


def test_a_top_level_failure_stops_the_batch(org):
    parts, first, third = batch_of_three(org)

    answers = run(org, parts)

    assert [a.status for a in answers] == [204, 404]  # type: ignore[union-attr]
    assert answers[1].body["error"]["code"] == NOT_FOUND  # type: ignore[union-attr]
    assert not org.missing("queues", first)
    assert org.missing("queues", third)


def test_continue_on_error_runs_the_rest_of_the_batch(org):
    parts, first, third = batch_of_three(org)

    answers = run(org, parts, prefer="odata.continue-on-error")

    assert [a.status for a in answers] == [204, 404, 204]  # type: ignore[union-attr]
    assert not org.missing("queues", first)
    assert not org.missing("queues", third)


def test_a_failed_change_set_stops_the_batch_unless_continue_on_error(org):
    later = org.new_id()
    parts = [
        changeset([request("POST", "queues", {"name": "x", "statecode": 1})]),
        request("POST", "queues", {"queueid": later, "name": "Later"}),
    ]

    stopped = run(org, parts)
    assert org.missing("queues", later)
    kept_going = run(org, parts, prefer="odata.continue-on-error")

    assert [a.status for a in stopped] == [400]  # type: ignore[union-attr]
    assert [a.status for a in kept_going] == [400, 204]  # type: ignore[union-attr]
    assert not org.missing("queues", later)


def test_a_get_inside_a_change_set_is_refused_and_nothing_runs(org):
    record = org.new_id()

    response = send(
        org,
        [
            changeset(
                [
                    request("POST", "queues", {"queueid": record, "name": "One"}),
                    request("GET", "WhoAmI"),
                ]
            )
        ],
    )

    assert org.error_of(response) == (400, PAYLOAD_ERROR)
    assert org.missing("queues", record)


GOOD = request("GET", "WhoAmI")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("application/json", multipart(BATCH, [GOOD]), id="not-multipart"),
        pytest.param("multipart/mixed", multipart(BATCH, [GOOD]), id="no-boundary"),
        pytest.param(
            f"multipart/mixed; boundary={BATCH}",
            f"--{BATCH}{CRLF}{GOOD}{CRLF}",
            id="no-closing-delimiter",
        ),
        pytest.param(
            f"multipart/mixed; boundary={BATCH}",
            multipart("other_boundary", [GOOD]),
            id="wrong-boundary",
        ),
        pytest.param(
            f"multipart/mixed; boundary={BATCH}",
            multipart(BATCH, [f"Content-Type: text/plain{CRLF}{CRLF}GET WhoAmI HTTP/1.1"]),
            id="part-not-application-http",
        ),
        pytest.param(
            f"multipart/mixed; boundary={BATCH}",
            multipart(BATCH, [GOOD.replace(" HTTP/1.1", "")]),
            id="bad-request-line",
        ),
        pytest.param(
            f"multipart/mixed; boundary={BATCH}",
            multipart(BATCH, [GOOD.replace("Accept: application/json", "Accept application/json")]),
            id="bad-header-line",
        ),
        pytest.param(
            f"multipart/mixed; boundary={BATCH}",
            multipart(BATCH, [changeset([GOOD], boundary="cs_1").replace("--cs_1--", "--cs_2--")]),
            id="unclosed-change-set",
        ),
        pytest.param(
            f"multipart/mixed; boundary={BATCH}",
            multipart(BATCH, ["Content-Type: application/http"]).encode() + b"\xff",
            id="not-utf8",
        ),
    ],
)
def test_a_malformed_batch_is_400(org, content_type, body):
    content = body if isinstance(body, bytes) else body.encode()

    response = org.request(
        "POST", "$batch", content=content, headers={"Content-Type": content_type}
    )

    assert org.error_of(response) == (400, PAYLOAD_ERROR)


def test_a_batch_of_1000_requests_is_accepted(org):
    answers = run(org, [GOOD] * 1000)

    assert len(answers) == 1000
    assert {a.status for a in answers} == {200}  # type: ignore[union-attr]


@pytest.mark.parametrize("shape", ["top-level", "change-sets"])
def test_a_batch_of_more_than_1000_requests_is_refused(org, shape):
    post = request("POST", "queues", {"name": "Too many"})
    if shape == "top-level":
        parts = [post] * 1001
    else:
        parts = [changeset([post] * 500), changeset([post] * 501, boundary="changeset_2")]
    before = len(org.rows("queues"))

    response = send(org, parts)

    assert org.error_of(response) == (400, PAYLOAD_ERROR)
    assert len(org.rows("queues")) == before


@pytest.mark.parametrize(
    "url",
    [f"{BASE}queues", "/api/data/v9.2/queues", "queues"],
    ids=["absolute", "path", "relative"],
)
def test_request_urls_may_be_absolute_or_relative_to_the_root(org, url):
    record = org.new_id()
    part = request("POST", "queues", {"queueid": record, "name": "Any URL"})
    part = part.replace(f"POST {BASE}queues ", f"POST {url} ")

    (answer,) = run(org, [changeset([part])])

    assert isinstance(answer, list)
    assert answer[0].status == 204
    assert org.read("queues", record)["name"] == "Any URL"


def test_a_change_set_may_bind_to_existing_records_by_url(org):
    queue = org.queue()

    (answer,) = run(
        org,
        [
            changeset(
                [
                    request(
                        "POST",
                        "msdyn_liveworkstreams",
                        {"msdyn_name": "W", "msdyn_defaultqueue@odata.bind": f"/queues({queue})"},
                    )
                ]
            )
        ],
    )

    assert isinstance(answer, list)
    workstream = entity_id(answer[0])
    assert org.read("msdyn_liveworkstreams", workstream)["_msdyn_defaultqueue_value"] == queue


@pytest.mark.parametrize("body", ["{not json", "[1, 2]"])
def test_a_bad_json_body_in_a_change_set_fails_it(org, body):
    record = org.new_id()
    bad = request("POST", "queues", {}).replace("{}", body)

    (failure,) = run(
        org,
        [changeset([request("POST", "queues", {"queueid": record, "name": "One"}), bad])],
    )

    assert isinstance(failure, Answer)
    assert failure.status == 400
    assert failure.body["error"]["code"] == PAYLOAD_ERROR
    assert org.missing("queues", record)


def test_an_empty_batch_answers_an_empty_multipart(org):
    response = org.request(
        "POST",
        "$batch",
        content=f"--{BATCH}--{CRLF}".encode(),
        headers={"Content-Type": f"multipart/mixed; boundary={BATCH}"},
    )

    assert response.status_code == 200
    assert parse_multipart(response.headers["Content-Type"], response.text) == []
