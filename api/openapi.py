"""GET /openapi.json: the description of the whole API, kept in the repo next to the routes.

tests/test_openapi.py proves it names exactly the routes the app has, and a fuzz run
(make fuzz) proves the live answers match it.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, current_app

bp = Blueprint("openapi", __name__)
SPEC = Path(__file__).with_name("openapi.json")


def load_spec() -> dict:
    """The OpenAPI document as a dict."""
    return json.loads(SPEC.read_text(encoding="utf-8"))


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description, read once per process."""
    spec = current_app.extensions.get("openapi_spec")
    if spec is None:
        spec = current_app.extensions["openapi_spec"] = load_spec()
    return spec
