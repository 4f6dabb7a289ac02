"""Tenant isolation on every route: a principal of tenant B cannot read, list or change
anything of tenant A, and A's ids answer 404 exactly like missing ones.

The test enumerates the application's routes; a route with no case in `tests/isolation_cases`
fails the test, so a new route cannot forget the tenant scope silently.
"""

from __future__ import annotations

import re
import uuid

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Route

from pledge.access.permissions import Role
from pledge.runtime import Runtime
from pledge.web.app import API_ROUTERS, PAGE_ROUTERS, create_app
from tests.conftest import api_client, login, make_api_token, make_tenant, make_user
from tests.isolation_cases import World, all_cases


def all_routes(runtime: Runtime) -> set[tuple[str, str]]:
    """Every (method, path) the application serves: its own routes and its routers'."""
    found: set[tuple[str, str]] = set()
    routes: list[BaseRoute] = [
        r for r in create_app(runtime).routes if isinstance(r, APIRoute | Route)
    ]
    routes += [r for router in (*API_ROUTERS, *PAGE_ROUTERS) for r in router.routes]
    for route in routes:
        assert isinstance(route, APIRoute | Route), route
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


def test_every_route_has_an_isolation_case(runtime: Runtime) -> None:
    covered: set[tuple[str, str]] = set()
    for cases in all_cases():
        covered |= set(cases.api_foreign) | set(cases.page_foreign) | cases.lists | cases.public
    missing = all_routes(runtime) - covered
    assert not missing, f"routes without a tenant-isolation case: {sorted(missing)}"


_PARAM = re.compile(r"\{(\w+)\}")


def _fill(path: str, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: values[m.group(1)], path)


def test_tenant_b_cannot_reach_tenant_a(runtime: Runtime) -> None:
    make_tenant(runtime, "tenant-a")
    make_tenant(runtime, "tenant-b")
    params: dict[str, str] = {}
    for cases in all_cases():
        params.update(cases.setup_a(runtime))
    make_user(runtime, "tenant-b", "owner@b.example", Role.OWNER)
    page = TestClient(create_app(runtime), raise_server_exceptions=False)
    csrf = login(page, "tenant-b", "owner@b.example")
    world = World(
        runtime, api_client(runtime, make_api_token(runtime, "tenant-b")), page, csrf, params
    )
    missing = {k: str(uuid.uuid4()) if k.endswith("_id") else "no-such-thing" for k in params}

    for cases in all_cases():
        for (method, path), body in cases.api_foreign.items():
            r = world.api.request(method, _fill(path, params), json=body)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            # …exactly as for an id that exists nowhere.
            r2 = world.api.request(method, _fill(path, {**params, **missing}), json=body)
            assert (r2.status_code, r2.json()["code"]) == (404, r.json()["code"]), (method, path)
        for (method, path), form in cases.page_foreign.items():
            data = {**(form or {}), "csrf_token": csrf} if method == "POST" else None
            r = world.page.request(
                method, _fill(path, params), data=data, headers={"accept": "text/html"}
            )
            assert r.status_code == 404, (method, path, r.status_code)
    for cases in all_cases():
        if cases.check:
            cases.check(world)
    for cases in all_cases():
        if cases.verify_a:
            cases.verify_a(runtime, params)
