"""Notices through the API: versions per language that are never edited, their hashes, the
version in force, and the diff between two versions."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.lawfulness.conftest import audit_events, ok, problem

V1 = "We collect your e-mail address.\nWe keep it for two years.\nWe never sell it."
V2 = (
    "We collect your e-mail address.\nWe keep it for one year.\nWe never sell it.\nAsk us anything."
)


def _notice(client: TestClient, slug: str = "privacy", kind: str = "privacy_notice") -> None:
    ok(client.post("/api/v1/notices", json={"slug": slug, "kind": kind, "title": "Privacy"}), 201)


def _publish(client: TestClient, text: str, **extra: object) -> dict[str, Any]:
    body = {"text": text, **extra}
    result: dict[str, Any] = ok(client.post("/api/v1/notices/privacy/versions", json=body), 201)
    return result


def test_versions_are_kept_with_their_hash_and_the_latest_is_in_force(client: TestClient) -> None:
    _notice(client)
    v1 = _publish(client, V1)
    assert v1["version"] == 1 and v1["in_force"] is True and v1["text"] == V1
    assert v1["sha256"] == hashlib.sha256(V1.encode()).hexdigest()
    v2 = _publish(client, V2, summary="Shorter retention")
    de = _publish(client, "Wir erheben Ihre E-Mail-Adresse.", language="de")
    assert (v2["version"], de["version"]) == (2, 1)

    notice = ok(client.get("/api/v1/notices/privacy"))
    assert notice["languages"] == ["de", "en"]
    in_force = {(v["language"], v["version"]): v["in_force"] for v in notice["versions"]}
    assert in_force == {("de", 1): True, ("en", 1): False, ("en", 2): True}
    # v1 is superseded, not changed: its text and hash are still exactly what was shown.
    old = ok(client.get(f"/api/v1/notice-versions/{v1['id']}"))
    assert (old["text"], old["sha256"], old["in_force"]) == (V1, v1["sha256"], False)
    assert old["notice"] == "privacy" and old["kind"] == "privacy_notice"
    assert [n["slug"] for n in ok(client.get("/api/v1/notices"))] == ["privacy"]
    published = [e for e in audit_events(client) if e["event"] == "notice.published"]
    assert [e["details"]["sha256"] for e in published] == [v1["sha256"], v2["sha256"], de["sha256"]]


def test_a_version_can_be_scheduled_to_take_effect_later(client: TestClient) -> None:
    _notice(client)
    _publish(client, V1)
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    v2 = _publish(client, V2, effective_at=later, material=True)
    assert v2["in_force"] is False and v2["material"] is True
    current = [v for v in ok(client.get("/api/v1/notices/privacy"))["versions"] if v["in_force"]]
    assert [v["version"] for v in current] == [1]


def test_the_diff_marks_added_and_removed_lines(client: TestClient) -> None:
    _notice(client)
    v1 = _publish(client, V1)
    v2 = _publish(client, V2)
    by_number = ok(client.get("/api/v1/notices/privacy/diff", params={"from": 1, "to": 2}))
    by_id = ok(
        client.get("/api/v1/notices/privacy/diff", params={"from": v1["id"], "to": v2["id"]})
    )
    assert by_number == by_id
    assert ok(client.get("/api/v1/notices/privacy/diff")) == by_id  # what changed last
    assert [(line["op"], line["text"]) for line in by_number["lines"]] == [
        ("same", "We collect your e-mail address."),
        ("removed", "We keep it for two years."),
        ("added", "We keep it for one year."),
        ("same", "We never sell it."),
        ("added", "Ask us anything."),
    ]
    assert (by_number["added"], by_number["removed"]) == (2, 1)
    assert by_number["from_version"]["sha256"] == v1["sha256"]
    assert by_number["to_version"]["version"] == 2


def test_notice_errors_are_problems_never_500s(client: TestClient) -> None:
    _notice(client)
    problem(
        client.post(
            "/api/v1/notices", json={"slug": "privacy", "kind": "privacy_notice", "title": "x"}
        ),
        409,
    )
    problem(client.post("/api/v1/notices", json={"slug": "x", "kind": "poster", "title": "x"}), 422)
    problem(client.post("/api/v1/notices/nope/versions", json={"text": "x"}), 404)
    problem(client.get("/api/v1/notices/nope"), 404, "not_found")
    for bad in (
        {"text": ""},
        {"text": "   "},
        {"text": "x", "language": "English!"},
        {"text": "x", "effective_at": "2026-01-01T00:00:00"},  # no time zone
        {"text": "x", "unknown": 1},
    ):
        problem(client.post("/api/v1/notices/privacy/versions", json=bad), 422)
    _publish(client, V1)
    _notice(client, "other", "consent_wording")
    other = ok(client.post("/api/v1/notices/other/versions", json={"text": "Yes."}), 201)
    problem(client.get("/api/v1/notices/privacy/diff", params={"from": 1, "to": 9}), 404)
    # A version of another notice is not a version of this one.
    problem(client.get("/api/v1/notices/privacy/diff", params={"from": 1, "to": other["id"]}), 404)
    problem(client.get("/api/v1/notices/privacy/diff", params={"from": "x" * 41}), 422)
    # Without versions named: what changed last — and there is nothing before version 1.
    assert "before version 1" in problem(client.get("/api/v1/notices/privacy/diff"), 404)["detail"]
    problem(client.get("/api/v1/notices/other/diff", params={"language": "fr"}), 404)
    problem(client.get("/api/v1/notice-versions/not-an-id"), 404)
    problem(client.get("/api/v1/notice-versions/01890000-0000-7000-8000-000000000000"), 404)
