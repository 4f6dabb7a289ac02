"""The lawful-basis hygiene report (seed 000: "a regular process for removing EU contact info
where you no longer have a lawful basis") and its bulk erasure, by API and CLI."""

from __future__ import annotations

import io
import uuid

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

import pledge.cli.common as cli_common
from pledge.access.permissions import Scope
from pledge.cli.main import app
from pledge.runtime import Runtime
from tests.conftest import api_client, make_api_token
from tests.lawfulness.conftest import audit_events, collect, new_subject, ok, problem

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def _world(client: TestClient) -> dict[str, str]:
    """Subjects of a Clik-like tenant, some holding a basis and some not."""
    s: dict[str, str] = {}
    s["consented"] = collect(client, "newsletter", "a@example.com", {"newsletter": True})
    s["withdrew"] = collect(client, "newsletter", "b@example.com", {"newsletter": True})
    ok(
        client.post(
            f"/api/v1/subjects/{s['withdrew']}/consents",
            json={"purpose": "newsletter", "action": "withdraw"},
        ),
        201,
    )
    s["status"] = collect(client, "status-page", "c@example.com")
    s["objected"] = collect(client, "status-page", "d@example.com")
    ok(client.post(f"/api/v1/subjects/{s['objected']}/objections/status-updates"))
    s["trial_over"] = collect(client, "trial", "e@example.com")
    for purpose in ("provide-service", "software-help", "service-analysis"):
        ok(client.delete(f"/api/v1/subjects/{s['trial_over']}/relationships/{purpose}"))
    s["bare"] = new_subject(client, "f@example.com")
    s["restricted"] = new_subject(client, "g@example.com")
    ok(client.put(f"/api/v1/subjects/{s['restricted']}/privacy-state", json={"restricted": True}))
    # Record keeping ended, but the legal obligation to keep marketing preferences remains.
    s["obliged"] = collect(client, "contact-email", "h@example.com")
    ok(client.delete(f"/api/v1/subjects/{s['obliged']}/relationships/record-keeping"))
    s["erased"] = new_subject(client, "i@example.com")
    ok(client.delete(f"/api/v1/subjects/{s['erased']}"))
    s["child"] = collect(client, "newsletter", "j@example.com", {"newsletter": True})
    ok(client.put(f"/api/v1/subjects/{s['child']}/privacy-state", json={"is_child": True}))
    return s


WITHOUT_BASIS = {"withdrew", "objected", "trial_over", "bare", "child"}


def test_the_report_finds_exactly_the_subjects_without_a_basis(
    client: TestClient, clik_tenant: str
) -> None:
    s = _world(client)
    report = ok(client.get("/api/v1/reports/lawful-basis"))
    assert set(report["subject_ids"]) == {s[k] for k in WITHOUT_BASIS}
    assert report["count"] == len(WITHOUT_BASIS) and report["purposes_considered"] == 13
    (entry,) = [e for e in audit_events(client) if e["event"] == "hygiene.reported"]
    assert entry["details"] == {
        "count": len(WITHOUT_BASIS),
        "purposes": 13,
        "digest": report["digest"],
    }
    # The report agrees with the gate: none of them is allowed anything the tenant does.
    for key in WITHOUT_BASIS:
        for purpose in ("newsletter", "status-updates", "provide-service", "software-help"):
            body = {"subject_id": s[key], "purpose": purpose}
            assert not ok(client.post("/api/v1/gate/check", json=body))["allowed"], (key, purpose)


def test_bulk_erasure_erases_exactly_those_still_without_a_basis(
    client: TestClient, clik_tenant: str
) -> None:
    s = _world(client)
    listed = ok(client.get("/api/v1/reports/lawful-basis"))["subject_ids"]
    # Between the report and the erasure, one of them signs up again: they are spared.
    ok(
        client.post(
            f"/api/v1/subjects/{s['bare']}/relationships/status-updates",
            json={"collection_point": "status-page"},
        )
    )
    stranger, garbage = str(uuid.uuid4()), "not-an-id"
    body = {"subject_ids": [*listed, s["consented"], stranger, garbage], "confirm": True}
    result = ok(client.post("/api/v1/reports/lawful-basis/erase", json=body))
    erased = WITHOUT_BASIS - {"bare"}
    assert set(result["erased"]) == {s[k] for k in erased}
    assert result["erased_count"] == len(erased)
    assert set(result["skipped"]) == {s["bare"], s["consented"], stranger, garbage}

    for key, sid in s.items():
        status = ok(client.get(f"/api/v1/subjects/{sid}"))["status"]
        assert status == ("erased" if key in erased | {"erased"} else "active"), key
    events = audit_events(client)
    erasures = [e["subject_id"] for e in events if e["event"] == "subject.erased"]
    assert sorted(erasures[1:]) == sorted(s[k] for k in erased)  # [0]: the one erased by hand
    (summary,) = [e for e in events if e["event"] == "hygiene.erased"]
    assert summary["details"]["erased"] == len(erased) and summary["details"]["skipped"] == 4
    assert ok(client.get("/api/v1/reports/lawful-basis"))["subject_ids"] == []


def test_bulk_erasure_needs_confirmation_and_the_erase_scope(
    runtime: Runtime, client: TestClient, clik_tenant: str
) -> None:
    sid = new_subject(client, "keep@example.com")
    body = {"subject_ids": [sid]}
    assert (
        "confirm"
        in problem(client.post("/api/v1/reports/lawful-basis/erase", json=body), 422)["detail"]
    )
    problem(
        client.post(
            "/api/v1/reports/lawful-basis/erase", json={"subject_ids": [], "confirm": True}
        ),
        422,
    )
    assert ok(client.get(f"/api/v1/subjects/{sid}"))["status"] == "active"
    reporter = api_client(
        runtime, make_api_token(runtime, clik_tenant, frozenset({Scope.REPORTS_READ}))
    )
    assert ok(reporter.get("/api/v1/reports/lawful-basis"))["subject_ids"] == [sid]
    problem(
        reporter.post("/api/v1/reports/lawful-basis/erase", json={**body, "confirm": True}), 403
    )


@pytest.mark.usefixtures("cli_env")
def test_the_cli_reports_and_erases(
    client: TestClient, clik_tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _world(client)
    code, out = run("gate", "hygiene", "--tenant", clik_tenant)
    assert code == 0, out
    assert f"{len(WITHOUT_BASIS)} subject(s) with no lawful basis left" in out
    assert {s[k] for k in WITHOUT_BASIS} <= set(out.split())

    code, out = run("gate", "hygiene", "--tenant", clik_tenant, "--erase")
    assert code == 1 and "--yes" in out
    assert ok(client.get(f"/api/v1/subjects/{s['bare']}"))["status"] == "active"

    # On a terminal the erasure shows its progress (gone once done; nothing in a log).
    screen = io.StringIO()
    monkeypatch.setattr(cli_common, "console", Console(file=screen, force_terminal=True))
    code, out = run("gate", "hygiene", "--tenant", clik_tenant, "--erase", "--yes")
    assert code == 0, out
    assert f"Erased {len(WITHOUT_BASIS)} subject(s); skipped 0" in out
    assert "Erasing" in screen.getvalue() and "Erasing" not in out
    for key, sid in s.items():
        status = ok(client.get(f"/api/v1/subjects/{sid}"))["status"]
        assert status == ("erased" if key in WITHOUT_BASIS | {"erased"} else "active"), key
    assert "0 subject(s) with no lawful basis left" in run("gate", "hygiene", "-t", clik_tenant)[1]
