"""Creating tenants: settings every later step depends on are checked when the tenant is made."""

from __future__ import annotations

import pytest

from pledge.core.errors import InvalidInput
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects import service as subjects
from tests.conftest import make_tenant


def test_a_phone_region_the_phone_library_does_not_know_is_refused(runtime: Runtime) -> None:
    # "ZZ" has the shape of a country code, but national numbers could never be read in it:
    # every phone without +code would later be refused as "not a phone number".
    with pytest.raises(InvalidInput, match="phone region"):
        make_tenant(runtime, "zz-co", phone_region="ZZ")
    make_tenant(runtime, "us-co", phone_region="us")
    with runtime.tenant_context("us-co") as ctx:
        sid = subjects.create_subject(
            ctx,
            [
                subjects.FieldInput("email", "ann@example.com"),
                subjects.FieldInput("phone", "(415) 555-0132"),
            ],
        )
        assert reading.read_subject(ctx, sid).value("phone") == "+14155550132"
