"""`pledge purpose|notice|consent|gate`, run as an operator would."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pledge.cli import common
from pledge.cli.main import app
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from tests.conftest import make_tenant

pytestmark = pytest.mark.usefixtures("cli_env")
runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables unwrapped, as on an operator's wide terminal (Rich reads COLUMNS only once)."""
    monkeypatch.setattr(common.console, "_width", 240)


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, " ".join(result.output.split())


def raw(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def _ok(*args: str, stdin: str | None = None) -> str:
    code, out = run(*args, stdin=stdin)
    assert code == 0, out
    return out


def test_purposes_and_collection_points_from_the_cli(runtime: Runtime, tmp_path: Path) -> None:
    make_tenant(runtime, "acme")
    t = ("--tenant", "acme")
    _ok("notice", "create", *t, "news-words", "--kind", "consent_wording", "--title", "News")
    _ok("notice", "publish", *t, "news-words", "-", stdin="Yes, send me the news.")
    _ok(
        "purpose", "create", *t, "news", "--name", "The news", "--basis", "Consent",
        "--channel", "email", "--marketing", "--category", "user.contact.email",
        "--consent-notice", "news-words",
    )  # fmt: skip
    code, out = run(
        "purpose", "create", *t, "care", "--name", "Care", "--basis", "LegitimateInterest"
    )
    assert code == 1 and "legitimate_interest_note" in out
    _ok(
        "purpose", "create", *t, "care", "--name", "Customer care", "--basis",
        "LegitimateInterest", "--li-note", "to answer what you ask us",
    )  # fmt: skip
    out = _ok("purpose", "list", *t)
    assert "news" in out and "Consent" in out and "LegitimateInterest" in out and "marketing" in out

    out = _ok(
        "purpose", "point-save", *t, "--slug", "signup", "--name", "Sign-up", "--kind",
        "web_form", "--purpose", "news=news-words", "--purpose", "care",
    )  # fmt: skip
    assert "created" in out and "news, care" in out
    toml = tmp_path / "point.toml"
    toml.write_text(
        'slug = "signup"\nname = "Sign-up form"\nkind = "web_form"\n'
        '[[purposes]]\npurpose = "news"\nconsent_notice = "news-words"\n'
    )
    assert "updated" in _ok("purpose", "point-save", *t, "--file", str(toml))
    assert "signup" in _ok("purpose", "list", *t)
    toml.write_text('slug = "x"\n')
    code, out = run("purpose", "point-save", *t, "--file", str(toml))
    assert code == 1 and "array of `purposes` tables" in out
    toml.write_text("slug = = 1")
    assert run("purpose", "point-save", *t, "--file", str(toml))[0] == 1
    assert run("purpose", "point-save", *t, "--slug", "x")[0] == 1

    assert "archived" in _ok("purpose", "archive", *t, "care")
    assert "care" not in _ok("purpose", "list", *t).split()
    assert "care" in _ok("purpose", "list", *t, "--archived")
    code, out = run("purpose", "archive", *t, "nope")
    assert code == 1 and "no such purpose" in out


def test_notices_publish_list_and_diff(runtime: Runtime, tmp_path: Path) -> None:
    make_tenant(runtime, "acme")
    t = ("--tenant", "acme")
    _ok("notice", "create", *t, "privacy", "--kind", "privacy_notice", "--title", "Privacy")
    first = tmp_path / "v1.txt"
    first.write_text("We keep your data for two years.\nWe never sell it.\n")
    assert "v1 (en)" in _ok("notice", "publish", *t, "privacy", str(first))
    out = _ok(
        "notice", "publish", *t, "privacy", "-", "--summary", "[shorter] retention",
        "--effective-at", "2020-01-01T00:00:00+00:00",
        stdin="We keep your data for one year.\nWe never sell it.\n",
    )  # fmt: skip
    assert "v2 (en)" in out and "2020-01-01T00:00:00+00:00" in out
    out = _ok("notice", "versions", *t, "privacy")
    assert "[shorter] retention" in out and out.count("yes") == 1
    code, diff = raw("notice", "diff", *t, "privacy", "1", "2")
    assert code == 0, diff
    assert "- We keep your data for two years." in diff.splitlines()
    assert "+ We keep your data for one year." in diff.splitlines()
    assert "  We never sell it." in diff.splitlines()
    code, out = run("notice", "diff", *t, "privacy", "1", "7")
    assert code == 1 and "no such version" in out
    code, out = run("notice", "publish", *t, "privacy", str(tmp_path / "missing.txt"))
    assert code == 1 and "cannot read" in out


def test_consent_grant_timeline_and_receipt_exit_codes(runtime: Runtime, tmp_path: Path) -> None:
    make_tenant(runtime, "acme")
    make_tenant(runtime, "other")
    with runtime.tenant_context("acme") as ctx:
        subjects.create_subject(ctx, [FieldInput("email", "pat@example.com")])
    t = ("--tenant", "acme")
    _ok("notice", "create", *t, "words", "--kind", "consent_wording", "--title", "Words")
    _ok("notice", "publish", *t, "words", "-", stdin="Yes, call me about [offers].")
    _ok(
        "purpose", "create", *t, "calls", "--name", "Sales calls", "--basis", "Consent",
        "--channel", "phone", "--consent-notice", "words",
    )  # fmt: skip
    code, out = raw("consent", "grant", *t, "--email", "pat@example.com", "--purpose", "calls")
    assert code == 0, out
    receipt = out.strip().splitlines()[-1]
    assert receipt.count(".") == 2

    code, out = run("consent", "timeline", *t, "--email", "pat@example.com")
    assert code == 0 and "grant calls by staff_phone" in out
    assert "Yes, call me about [offers]." in out  # the exact words, brackets and all

    good = tmp_path / "receipt.jws"
    good.write_text(receipt)
    code, out = run("consent", "verify-receipt", *t, str(good))
    assert code == 0 and "valid" in out and "consentReceiptID" in out
    assert run("consent", "verify-receipt", *t, "-", stdin=receipt)[0] == 0
    head, payload, signature = receipt.split(".")
    tampered = f"{head}.{payload[:-4]}AAAA.{signature}"
    code, out = run("consent", "verify-receipt", *t, "-", stdin=tampered)
    assert code == 1 and "invalid" in out and "signature" in out
    code, out = run("consent", "verify-receipt", "--tenant", "other", str(good))
    assert code == 1 and "never used" in out
    code, out = run("consent", "verify-receipt", *t, str(tmp_path / "nope.jws"))
    assert code == 1 and "cannot read" in out

    _ok("consent", "withdraw", *t, "--email", "pat@example.com", "--purpose", "calls")
    assert "withdraw calls" in _ok("consent", "timeline", *t, "--email", "pat@example.com")
    code, out = run("consent", "grant", *t, "--email", "who@example.com", "--purpose", "calls")
    assert code == 1 and "no subject" in out


def test_gate_check_and_audience_from_the_cli(runtime: Runtime) -> None:
    make_tenant(runtime, "acme")
    with runtime.tenant_context("acme") as ctx:
        subjects.create_subject(ctx, [FieldInput("email", "lee@example.com")])
    t = ("--tenant", "acme")
    _ok("notice", "create", *t, "words", "--kind", "consent_wording", "--title", "Words")
    _ok("notice", "publish", *t, "words", "-", stdin="Yes, e-mail me.")
    _ok(
        "purpose", "create", *t, "mail", "--name", "Mail", "--basis", "Consent",
        "--channel", "email", "--consent-notice", "words",
    )  # fmt: skip
    check = ("gate", "check", *t, "--email", "lee@example.com", "--purpose", "mail")
    code, out = run(*check, "--channel", "email")
    assert code == 2 and "denied" in out and "no_consent" in out
    _ok("consent", "grant", *t, "--email", "lee@example.com", "--purpose", "mail")
    code, out = run(*check, "--channel", "email")
    assert code == 0 and "allowed" in out
    code, out = run(*check, "--channel", "sms")
    assert code == 2 and "channel_not_allowed" in out

    out = _ok("gate", "audience", *t, "--purpose", "mail", "--channel", "email")
    assert "1 allowed of 1 (0 denied); digest" in out
    out = _ok("gate", "audience", *t, "--purpose", "mail", "--channel", "email", "--ids")
    assert len(out.split()[-1]) == 36
    code, out = run("gate", "audience", *t, "--purpose", "nope")
    assert code == 1 and "no such purpose" in out


def test_topics_from_the_cli(runtime: Runtime) -> None:
    make_tenant(runtime, "acme")
    t = ("--tenant", "acme")
    _ok(
        "purpose", "create", *t, "news", "--name", "The news", "--basis", "Consent",
        "--channel", "email", "--marketing",
    )  # fmt: skip
    _ok(
        "purpose", "create", *t, "ops", "--name", "Service status", "--basis",
        "LegitimateInterest", "--li-note", "to tell customers about outages",
    )  # fmt: skip
    out = _ok(
        "purpose", "topic-add", *t, "product-news", "--name", "Product news", "--purpose", "news"
    )
    assert "Topic product-news added under purpose news" in out
    _ok("purpose", "topic-add", *t, "status", "--name", "Outages", "--purpose", "ops")
    code, out = run("purpose", "topic-add", *t, "status", "--name", "Again", "--purpose", "ops")
    assert code == 1 and "already exists" in out
    code, out = run("purpose", "topic-add", *t, "x", "--name", "X", "--purpose", "nope")
    assert code == 1 and "no such purpose" in out.lower()
    code, listing = raw("purpose", "topics", *t)
    assert code == 0
    rows = [
        [cell.strip() for cell in line.strip("│ ").split("│")]
        for line in listing.splitlines()
        if line.startswith("│")
    ]
    assert rows == [
        ["product-news", "Product news", "news", "marketing"],
        ["status", "Outages", "ops", "service"],
    ]
    # The preference center offers the new topic to readers.
    with runtime.tenant_context("acme") as ctx:
        from pledge.preferences import topics

        assert [tp.slug for tp, _ in topics.list_topics(ctx)] == ["product-news", "status"]
