"""The stand-in's receiving routes, as the app serves them, and their test controls.

``GET /inbox``, ``POST|GET /webhooks`` (also ``/webhook``), ``DELETE /webhooks/{id}``,
``GET|PATCH /settings`` behind the same Basic auth as the rest (app.py's ``gate``); and
``POST /_standin/receive {"phone", "text", "at"?}``, ``GET /_standin/webhook_attempts``,
``POST /_standin/inbox_config {...}`` for tests in other processes.
"""

from __future__ import annotations

import json

from flask import Flask, jsonify, request

from .inbox import INBOX_OPTIONS, PhoneInbox, Refused


def _body():
    try:
        return json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        raise Refused("Failed to convert request body") from None


def add_routes(app: Flask, inbox: PhoneInbox) -> None:
    """Serve ``inbox`` on ``app``."""

    @app.errorhandler(Refused)
    def refused(exc):
        return jsonify(message=str(exc)), 400

    @app.get("/inbox")
    def inbox_list():
        total, page = inbox.list_inbox(request.args)
        response = jsonify(page)
        response.headers["X-Total-Count"] = str(total)
        return response

    @app.post("/webhook")
    @app.post("/webhooks")
    def webhook_add():
        return jsonify(inbox.register(_body())), 201

    @app.get("/webhook")
    @app.get("/webhooks")
    def webhook_list():
        return jsonify(inbox.list_hooks())

    @app.delete("/webhook/<hook_id>")
    @app.delete("/webhooks/<hook_id>")
    def webhook_delete(hook_id):
        inbox.delete_hook(hook_id)
        return "", 204

    @app.get("/settings")
    def settings_get():
        return jsonify(inbox.settings_view())

    @app.patch("/settings")
    def settings_patch():
        inbox.patch_settings(_body())
        return jsonify(inbox.settings_view())

    @app.post("/_standin/receive")
    def ctl_receive():
        args = request.get_json(force=True, silent=True) or {}
        if not isinstance(args.get("phone"), str) or not isinstance(args.get("text"), str):
            return jsonify(error="phone and text are required"), 400
        return jsonify(inbox.receive(args["phone"], args["text"], args.get("at")))

    @app.get("/_standin/webhook_attempts")
    def ctl_attempts():
        with inbox.lock:
            return jsonify(attempts=list(inbox.attempts), idle=inbox.idle())

    @app.post("/_standin/inbox_config")
    def ctl_inbox_config():
        args = request.get_json(force=True, silent=True) or {}
        unknown = set(args) - set(INBOX_OPTIONS)
        if unknown:
            return jsonify(error=f"unknown options {sorted(unknown)}"), 400
        with inbox.lock:
            inbox.options.update(args)
        return jsonify(ok=True)
