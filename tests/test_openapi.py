"""The OpenAPI description names exactly the JSON routes the app serves, with their methods."""

from __future__ import annotations

import re

from api.openapi import load_spec

# Pages for people (HTML, session + CSRF) and static files are not part of the JSON API.
NOT_API = {"static", "pages"}


def app_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in NOT_API:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    return routes


def spec_routes(spec) -> set[tuple[str, str]]:
    return {(path, method) for path, item in spec["paths"].items() for method in item}


def test_every_api_route_is_described_and_nothing_else(app):
    assert app_routes(app) == spec_routes(load_spec())


def test_served_description_is_the_file(client, auth):
    response = client.get("/openapi.json", headers=auth)
    assert response.status_code == 200
    assert response.get_json() == load_spec()
    assert client.get("/openapi.json").status_code == 401


def test_every_operation_documents_its_problems_and_path_parameters():
    spec = load_spec()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (path, method)
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{([^}]+)}", path)), (path, method)
            if operation.get("security") != []:
                assert "401" in operation["responses"], (path, method)


def test_status_schema_lists_every_field_the_api_returns(client, auth):
    body = client.post(
        "/send", json={"message": "hi", "numbers": ["+14155550101"]}, headers=auth
    ).get_json()
    schema = load_spec()["components"]["schemas"]["Status"]
    returned = set(body) - {"rejected", "status_url"}
    assert returned <= set(schema["properties"])
    assert set(schema["required"]) <= returned


def test_a_method_the_route_does_not_take_is_405_with_allow(client, auth):
    response = client.delete("/status/j_x", headers=auth)
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}
