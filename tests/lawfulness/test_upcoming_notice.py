"""A change to the privacy notice is shown on the public notice page before it takes effect:
seed 002 "Material Change" — "we will notify you by means of a notice on this Site prior to the
change becoming effective"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from pledge.core.clock import frozen
from pledge.notices import service as notices
from pledge.runtime import Runtime
from pledge.web.app import create_app

HTML = {"accept": "text/html"}
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHANGES = "This notice changes on"


def page(runtime: Runtime, slug: str, at: datetime, lang: str = "en") -> str:
    """The public notice page as a reader sees it at `at`."""
    with frozen(at):
        response = TestClient(create_app(runtime), headers=HTML).get(
            f"/p/{slug}/privacy", params={"lang": lang}
        )
    assert response.status_code == 200, response.text
    return response.text


def publish(
    runtime: Runtime,
    slug: str,
    text: str,
    *,
    language: str = "en",
    effective_at: datetime | None = None,
    summary: str = "",
    material: bool = False,
) -> None:
    """A version of the tenant's privacy notice, published at START."""
    with frozen(START), runtime.tenant_context(slug) as ctx:
        if notices.find_notice(ctx, "privacy") is None:
            notices.create_notice(ctx, slug="privacy", kind="privacy_notice", title="Privacy")
        notices.publish_version(
            ctx,
            "privacy",
            text=text,
            language=language,
            effective_at=effective_at,
            summary=summary,
            material=material,
        )


def test_a_material_change_is_shown_on_the_site_before_it_takes_effect(
    runtime: Runtime, tenant: str
) -> None:
    publish(runtime, tenant, "Version one of our practices.")
    publish(
        runtime,
        tenant,
        "Version two: we now share chats with a new analytics partner.",
        effective_at=START + timedelta(days=30),
        summary="A new analytics partner",
        material=True,
    )
    shown = page(runtime, tenant, START + timedelta(days=1))
    # The version in force is still the one the page presents as in force...
    assert "Version 1, in force since 02 March 2026." in shown
    assert "Version one of our practices." in shown
    # ...and the change to come is announced under its own heading, with what changes, and
    # a link to its full text further down the same page (no script needed to read it).
    assert f'<h2 id="change-1">{CHANGES} <time datetime="2026-04-01T09:00:00+00:00">' in shown
    assert "01 April 2026</time></h2>" in shown
    assert "A new analytics partner" in shown and "a material change" in shown
    assert '<a href="#version-en-2">Read version 2 in full</a>' in shown
    assert 'id="version-en-2"' in shown
    assert "Version two: we now share chats with a new analytics partner." in shown
    assert notices.text_hash("Version two: we now share chats with a new analytics partner.") in (
        shown
    )


def test_on_its_date_the_upcoming_version_is_simply_the_one_in_force(
    runtime: Runtime, tenant: str
) -> None:
    publish(runtime, tenant, "Version one.")
    effective = START + timedelta(days=30)
    publish(runtime, tenant, "Version two.", effective_at=effective, summary="New partner")

    before = page(runtime, tenant, effective - timedelta(seconds=1))
    assert CHANGES in before and "Version 1, in force since" in before

    on_the_day = page(runtime, tenant, effective)
    assert "Version 2, in force since 01 April 2026." in on_the_day
    assert "Version two." in on_the_day and "What changed: New partner" in on_the_day
    assert CHANGES not in on_the_day and "Version one." not in on_the_day


def test_every_change_to_come_is_shown_in_date_order_material_or_not(
    runtime: Runtime, tenant: str
) -> None:
    publish(runtime, tenant, "Version one.")
    publish(
        runtime,
        tenant,
        "Version two.",
        effective_at=START + timedelta(days=60),
        summary="Second change",
        material=True,
    )
    # Published later, in force earlier; not material (no e-mail), but still a change the
    # reader sees on the page before it applies.
    publish(
        runtime, tenant, "Version three.", effective_at=START + timedelta(days=10), summary="First"
    )
    shown = page(runtime, tenant, START)
    # Version 3 (day 10) overtakes version 2 (day 60): by the version-in-force rule the
    # highest version in effect applies, so version 2 never takes effect and is not announced.
    assert "Read version 3 in full" in shown and "Read version 2 in full" not in shown

    publish(
        runtime, tenant, "Version four.", effective_at=START + timedelta(days=20), summary="Then"
    )
    shown = page(runtime, tenant, START)
    first, then = shown.index("Read version 3 in full"), shown.index("Read version 4 in full")
    assert first < then  # in date order: 12 March, then 22 March
    assert shown.count(CHANGES) == 2 and "a material change" not in shown
    assert "Version three." in shown and "Version four." in shown


def test_the_german_page_shows_the_german_change_to_come(runtime: Runtime, tenant: str) -> None:
    publish(runtime, tenant, "Our privacy notice.")
    publish(runtime, tenant, "Unser Datenschutzhinweis.", language="de")
    later = START + timedelta(days=30)
    publish(runtime, tenant, "Our new notice.", effective_at=later, summary="New partner")
    publish(
        runtime,
        tenant,
        "Unser neuer Hinweis.",
        language="de",
        effective_at=later,
        summary="Neuer Partner",
    )

    german = page(runtime, tenant, START, lang="de")
    assert "Unser Datenschutzhinweis." in german and "Unser neuer Hinweis." in german
    assert "Neuer Partner" in german and 'href="#version-de-2"' in german
    assert "Our new notice." not in german and "New partner" not in german
    assert 'id="version-de-2"' in german
    assert '<div lang="de"><blockquote class="exact-text">Unser neuer Hinweis.' in german

    english = page(runtime, tenant, START)
    assert "Our new notice." in english and "Unser neuer Hinweis." not in english


NOT_YET = "No version of this notice is in force yet."


def test_a_first_notice_dated_later_is_on_the_site_before_it_takes_effect(
    runtime: Runtime, tenant: str
) -> None:
    effective = START + timedelta(days=30)
    publish(
        runtime,
        tenant,
        "Our first privacy notice.",
        effective_at=effective,
        summary="Our first notice",
    )
    shown = page(runtime, tenant, START + timedelta(days=1))
    # Said plainly: nothing applies yet; then what will, on which date, in full.
    assert f"{NOT_YET} The first takes effect on 01 April 2026" in shown
    assert '<h2 id="change-1">This notice takes effect on <time datetime="2026-04-01T09:00' in (
        shown
    )
    assert "Version 1 takes effect on 01 April 2026 at 09:00 UTC." in shown
    assert '<a href="#version-en-1">Read version 1 in full</a>' in shown
    assert "Version 1, in force from 01 April 2026" in shown
    assert "Our first privacy notice." in shown
    assert "In force now" not in shown and "in force since" not in shown

    # A consent given meanwhile records no notice as shown: the version to come is not one.
    with frozen(START + timedelta(days=1)), runtime.tenant_context(tenant) as ctx:
        assert notices.public_notice(ctx) is None

    on_the_day = page(runtime, tenant, effective)
    assert "Version 1, in force since 01 April 2026." in on_the_day
    assert NOT_YET not in on_the_day and "takes effect on" not in on_the_day


def test_a_reader_in_another_language_sees_the_english_notice_to_come(
    runtime: Runtime, tenant: str
) -> None:
    later = START + timedelta(days=30)
    publish(runtime, tenant, "Our first notice.", effective_at=later)
    publish(runtime, tenant, "Erster Hinweis.", language="de", effective_at=later)
    french = page(runtime, tenant, START, lang="fr")
    assert NOT_YET in french and "Our first notice." in french
    assert "Erster Hinweis." not in french
    german = page(runtime, tenant, START, lang="de")
    assert "Erster Hinweis." in german and 'href="#version-de-1"' in german


def test_the_first_of_several_versions_to_come_is_said_to_take_effect_then_the_next_changes(
    runtime: Runtime, tenant: str
) -> None:
    publish(runtime, tenant, "First.", effective_at=START + timedelta(days=10))
    publish(runtime, tenant, "Second.", effective_at=START + timedelta(days=20), summary="More")
    shown = page(runtime, tenant, START)
    assert shown.count(NOT_YET) == 1 and "The first takes effect on 12 March 2026" in shown
    assert '<h2 id="change-1">This notice takes effect on' in shown
    assert '<h2 id="change-2">This notice changes on' in shown
    assert shown.index("First.") < shown.index("Second.")


def test_no_page_when_the_privacy_notice_has_no_version_at_all(
    runtime: Runtime, tenant: str
) -> None:
    client = TestClient(create_app(runtime), headers=HTML)
    assert client.get(f"/p/{tenant}/privacy").status_code == 404
    with runtime.tenant_context(tenant) as ctx:
        notices.create_notice(ctx, slug="privacy", kind="privacy_notice", title="Privacy")
        # Consent wording dated later is not a privacy notice: still nothing to show.
        notices.create_notice(ctx, slug="words", kind="consent_wording", title="Words")
        notices.publish_version(
            ctx, "words", text="Tick to subscribe.", effective_at=START + timedelta(days=999)
        )
    response = client.get(f"/p/{tenant}/privacy")
    assert response.status_code == 404
    assert "no privacy notice" in response.text
