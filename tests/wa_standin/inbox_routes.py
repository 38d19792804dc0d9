"""The stand-in's incoming side over HTTP: what the page's script asks, and the test controls.

`POST /_standin/incoming {"phone", "text"?, "media"?, "caption"?, "name"?, "at"?}` drops a
message into a chat (as `StandinServer.incoming`); `GET /_standin/chats` lists the chat rows.
"""

from __future__ import annotations

from flask import get_template_attribute, jsonify, request


def chat_rows_html(rows: list[dict]) -> list[str]:
    """Each chat row's markup (templates/incoming.html); the page shows those in view."""
    row = get_template_attribute("incoming.html", "chat_row")
    return [str(row(r)) for r in rows]


def add_inbox_routes(app, state) -> None:
    """Register the incoming-message routes on the stand-in's Flask app."""

    @app.get("/_standin/api/incoming")
    def api_incoming():
        # The open chat's page asks for what came after the last bubble it shows.
        phone, after = request.args.get("phone", ""), request.args.get("after", "")
        with state.lock:
            state.book.touch(request.args.get("page"))
            messages = list(state.book.incoming.get(phone, []))
        ids = [m["id"] for m in messages]
        new = messages[ids.index(after) + 1 :] if after in ids else messages
        bubble = get_template_attribute("incoming.html", "incoming")
        return jsonify(messages=[{"id": m["id"], "html": str(bubble(m))} for m in new])

    @app.post("/_standin/api/closed")
    def api_closed():
        # navigator.sendBeacon from pagehide: the page no longer shows its chat.
        with state.lock:
            state.book.close_page(request.args.get("page"))
        return "", 204

    @app.post("/_standin/incoming")
    def ctl_incoming():
        body = request.get_json(force=True, silent=True) or {}
        fields = {k: body.get(k) for k in ("text", "media", "caption", "name", "at") if k in body}
        if not body.get("phone"):
            return jsonify(error="phone is required"), 400
        try:
            message = state.incoming(body["phone"], **fields)
        except (TypeError, ValueError) as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(message)

    @app.get("/_standin/chats")
    def ctl_chats():
        return jsonify(chats=state.snapshot()["chats"])
