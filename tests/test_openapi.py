"""The REST API as a contract: every operation under /api/ documents what it does, what it
answers on success (a schema, or the file types it sends) and its problem+json errors, under
the media type they are sent with."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from pledge.runtime import Runtime
from pledge.signals import service as signals
from pledge.web.app import create_app

# Operations that answer with a file rather than JSON.
FILES = {("get", "/api/v1/requests/{request_id}/artifacts/{artifact_id}")}


def test_every_api_operation_is_documented(runtime: Runtime) -> None:
    spec = TestClient(create_app(runtime)).get("/openapi.json").json()
    operations = [
        (method, path, op)
        for path, ops in spec["paths"].items()
        if path.startswith("/api/")
        for method, op in ops.items()
    ]
    assert len(operations) > 80  # every domain's router is mounted
    undocumented = []
    for method, path, op in operations:
        where = f"{method.upper()} {path}"
        if not (op.get("description") or op.get("summary")):
            undocumented.append(f"{where}: no description")
        success = [code for code in op["responses"] if code.startswith("2")]
        if not success:
            undocumented.append(f"{where}: no success response")
        for code in success:
            content = op["responses"][code].get("content", {})
            if (method, path) in FILES:
                if not content or "application/json" in content:
                    undocumented.append(f"{where}: file types not documented")
            elif code != "204" and "$ref" not in json.dumps(content.get("application/json")):
                undocumented.append(f"{where}: {code} has no response schema")
        for code in ("401", "404", "422"):
            # As sent: a client picks the parser by the media type the contract names.
            content = op["responses"].get(code, {}).get("content", {})
            problem = content.get("application/problem+json")
            if not problem or not problem["schema"].get("$ref", "").endswith("/Problem"):
                undocumented.append(f"{where}: {code} is not documented as a problem")
            if "application/json" in content:
                undocumented.append(f"{where}: {code} documented as JSON, sent as problem+json")
    assert not undocumented, "\n".join(undocumented)


def test_the_signal_effects_an_answer_may_carry_are_each_explained(runtime: Runtime) -> None:
    # An integrator reads `signal_effects` to tell the person what their browser's GPC did;
    # every value the service can write must be named in the contract.
    spec = TestClient(create_app(runtime)).get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    carrying = [s for s in schemas.values() if "signal_effects" in s.get("properties", {})]
    assert carrying
    for schema in carrying:
        described = schema["properties"]["signal_effects"].get("description", "")
        for value in (
            signals.GPC_OPTED_OUT,
            signals.GPC_ALREADY_OPTED_OUT,
            signals.GPC_OPT_IN_KEPT,
            signals.DNT_OPTED_OUT,
        ):
            assert f"`{value}`" in described, (schema.get("title"), value)
