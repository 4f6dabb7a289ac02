"""The per-address limit on the public forms is counted per tenant: the privacy and
preference centers of one tenant, however busy from one network (a mobile carrier's shared
address, an office), never hold back that network's people on another tenant's; and a post to
a privacy center that does not exist is not counted at all."""

from __future__ import annotations

from pledge.runtime import Runtime
from tests.conftest import make_tenant
from tests.rights.test_public_limits import Visitor, requests_in


def test_one_tenants_forms_do_not_use_up_anothers_limit(runtime: Runtime, tenant: str) -> None:
    make_tenant(runtime, "other")
    network = Visitor(runtime, public_form_rate="2/10 minutes")
    assert network.ask("one@example.com").status_code == 200
    assert network.ask("two@example.com").status_code == 200
    assert network.ask("three@example.com").status_code == 429  # acme's count is used up
    assert network.post("/p/acme/preferences?s=a&e=b&sig=c", {}).status_code == 429
    # The same network on another tenant's centers: its own count there.
    assert network.ask("three@example.com", slug="other").status_code == 200
    assert network.post("/p/other/preferences?s=a&e=b&sig=c", {}).status_code == 404
    assert network.ask("four@example.com", slug="other").status_code == 429
    assert requests_in(runtime, "acme") == 2 and requests_in(runtime, "other") == 1


def test_a_post_to_no_tenant_is_not_counted(runtime: Runtime, tenant: str) -> None:
    """Made-up workspace names would otherwise each open a count in the server's memory."""
    network = Visitor(runtime, public_form_rate="1/10 minutes")
    for _ in range(3):
        assert network.ask(slug="nosuch").status_code == 404
        r = network.post("/p/nosuch/preferences/withdraw?s=a&e=b&sig=c", {"purpose": "news"})
        assert r.status_code == 404
    assert network.ask().status_code == 200
    assert network.ask("other@example.com").status_code == 429
