"""A local stand-in for WhatsApp Web: same page structure, state kept in a Python object.

Tests drive it from Python (``StandinServer.login()``...) or over HTTP (``/_standin/...``)
and read back what it received with ``messages()``. The page itself is one Jinja template
plus ``static/standin.js``; the package docstring lists the locators it serves.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time

from flask import Flask, jsonify, render_template, request

from .chatbook import ChatBook
from .inbox_routes import add_inbox_routes, chat_rows_html

OPTIONS = {  # option name -> default; every one can also be changed at run time
    "logged_in": False,
    "invalid_numbers": frozenset(),
    "qr_rotate_seconds": 20.0,
    "tick_delay": 0.2,
    "never_tick": False,
    "boot_delay": 0.0,
    "use_here_conflict": False,
    # The filter chips above the chat list (All, Unread, ...), as WhatsApp Web has had since
    # 2024; off, the page is an older build whose list can only be scrolled.
    "chat_filters": True,
}


POLL_HOLD = 5.0  # seconds the page's state poll is held open while nothing changes


def _digits(phone) -> str:
    return re.sub(r"\D", "", str(phone or ""))


class StandinState:
    """Everything the fake WhatsApp server knows; every access holds ``self.lock``."""

    def __init__(self, **options):
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise TypeError(f"unknown stand-in options: {sorted(unknown)}")
        self.lock = threading.RLock()
        # Bumped on every change a page must react to; a page's poll waits on `changed`, as
        # the real page waits on its websocket, so an idle page costs nothing between changes.
        self.version = 0
        self.changed = threading.Condition(self.lock)
        self._initial = {**OPTIONS, **options}
        self.logged_in = False
        self.session = 0  # bumped on each login, so an open page can tell it was logged out
        self.reset()

    def reset(self) -> None:
        """Forget every message and go back to the options given at construction."""
        with self.lock:
            self._messages: list[dict] = []
            self.book = ChatBook()
            self._qr, self._qr_at = "", 0.0
            self.configure(**self._initial)

    def configure(self, **options) -> None:
        """Change options at run time (names as in ``OPTIONS``); KeyError for unknown ones."""
        with self.lock:
            for name, value in options.items():
                if name not in OPTIONS:
                    raise KeyError(name)
                if name == "invalid_numbers":
                    phones = [value] if isinstance(value, str) else value
                    value = frozenset(_digits(p) for p in phones)
                elif name == "logged_in":
                    (self.login if value else self.logout)()
                    continue
                elif isinstance(OPTIONS[name], bool):
                    value = bool(value)
                else:
                    value = float(value)
                setattr(self, name, value)
            self._bump()

    def _bump(self) -> None:
        with self.lock:
            self.version += 1
            self.changed.notify_all()

    def wait_for_change(self, since: int, hold: float) -> dict:
        """The snapshot once the version is past `since`, the QR rotates, or `hold` is up."""
        deadline = time.monotonic() + hold
        with self.lock:
            while self.version == since:
                left = deadline - time.monotonic()
                if not self.logged_in:  # the QR page redraws when the code rotates
                    left = min(left, self._qr_at + self.qr_rotate_seconds - time.monotonic())
                if left <= 0:
                    break
                self.changed.wait(left)
            return self.snapshot()

    def login(self) -> None:
        """As if the QR code was scanned: open pages move to the app shell."""
        with self.lock:
            if not self.logged_in:
                self.session += 1
            self.logged_in = True
            self._bump()

    def logout(self) -> None:
        """As if the phone unlinked this device: open pages go to /?post_logout=1."""
        with self.lock:
            self.logged_in = False
            self._qr_at = 0.0  # a fresh QR code, as after a real logout
            self._bump()

    def qr_payload(self) -> str:
        """The current QR payload, replaced once it is ``qr_rotate_seconds`` old."""
        with self.lock:
            now = time.monotonic()
            if not self._qr or now - self._qr_at >= self.qr_rotate_seconds:
                ref = secrets.token_urlsafe(18)
                self._qr, self._qr_at = f"2@{ref},{secrets.token_urlsafe(32)},1", now
            return self._qr

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "version": self.version,
                "logged_in": self.logged_in,
                "session": self.session,
                "use_here": self.use_here_conflict,
                "qr": self.qr_payload(),
                "tick_delay": self.tick_delay,
                "never_tick": self.never_tick,
                "chat_filters": self.chat_filters,
                "chats": self.book.rows(self._messages),
            }

    def incoming(self, phone, text="", media=None, caption=None, name=None, at=None) -> dict:
        """A contact writes to us (at `at`, epoch seconds: now by default): the message lands
        in their chat (see chatbook.py)."""
        with self.lock:
            message = self.book.add(_digits(phone), text, media, caption, name, at)
            self._bump()
            return {k: v for k, v in message.items() if k != "segments"}

    def read_on_phone(self, phone) -> None:
        """The chat is read elsewhere (on the phone): its badge goes, on every page."""
        with self.lock:
            self.book.unread.pop(_digits(phone), None)
            self._bump()

    def is_invalid(self, phone: str) -> bool:
        with self.lock:
            return not phone or phone in self.invalid_numbers

    def record(self, phone, text, attachment=None, caption=None) -> dict:
        """Store one received message and return it (as ``messages()`` shows it)."""
        with self.lock:
            message = {
                "phone": phone,
                "text": text,
                "attachment": attachment,
                "caption": caption,
                "at": time.time(),
            }
            # Internal: was it "acknowledged"? Chat history shows a tick only then.
            self._messages.append({**message, "_acked": not self.never_tick})
            return message

    def messages(self, phone: str | None = None, internal: bool = False) -> list[dict]:
        with self.lock:
            found = [m for m in self._messages if phone is None or m["phone"] == phone]
            if internal:
                return [dict(m) for m in found]
            return [{k: v for k, v in m.items() if not k.startswith("_")} for m in found]


def create_app(state: StandinState) -> Flask:
    """Build the Flask app serving the fake WhatsApp Web page and the control endpoints."""
    app = Flask(__name__, static_url_path="/_standin/static")

    def page(phone: str | None = None, text: str = ""):
        with state.lock:
            chat = None
            if state.logged_in and phone is not None:
                invalid = state.is_invalid(phone)
                history = [] if invalid else state.messages(phone, internal=True)
                chat = {"phone": phone, "text": text, "invalid": invalid}
                if not invalid:
                    chat["history"] = state.book.history(phone, history)
                    chat["title"] = state.book.title(phone)
            # Rendering a chat opens it, which reads it: before the snapshot, so its row
            # already shows no badge.
            opened = chat["phone"] if chat and not chat["invalid"] else None
            was_unread = bool(opened and state.book.unread.get(opened))
            token = state.book.open_page(opened) if state.logged_in else ""
            if was_unread:  # other pages' chat lists drop the badge
                state._bump()
            snap = state.snapshot()
        return render_template(
            "page.html",
            s=snap,
            chat=chat,
            boot_delay=state.boot_delay,
            page_token=token,
            rows_html=chat_rows_html(snap["chats"]),
        )

    @app.get("/favicon.ico")
    def favicon():
        return "", 204

    @app.get("/")
    def index():
        return page()

    @app.get("/send")
    def send_page():
        phone = request.args.get("phone")
        return page(None if phone is None else _digits(phone), request.args.get("text", ""))

    # --- what the page's own script calls ---------------------------------------------
    @app.get("/_standin/api/state")
    def api_state():
        since = request.args.get("since", type=int)
        with state.lock:
            state.book.touch(request.args.get("page"))
        # A page showing a chat asks for a short hold, so a closed browser stops counting as
        # "chat open" within PAGE_TTL (see chatbook.py).
        hold = min(POLL_HOLD, request.args.get("hold", POLL_HOLD, type=float))
        snap = state.snapshot() if since is None else state.wait_for_change(since, hold)
        return jsonify({**snap, "rows_html": chat_rows_html(snap["chats"])})

    @app.post("/_standin/api/send")
    def api_send():
        if request.files:
            fields = json.loads(request.form.get("json", "{}"))
            phone, caption = _digits(fields.get("phone")), fields.get("caption", "")
            args = (phone, caption, request.files["file"].filename, caption or None)
        else:
            body = request.get_json(force=True)
            args = (_digits(body.get("phone")), body.get("text", ""))
        snap = state.snapshot()
        if not snap["logged_in"]:
            return jsonify(error="logged_out"), 409
        if snap["use_here"]:
            return jsonify(error="use_here"), 409
        if not args[0] or not (args[1] or len(args) > 2):
            return jsonify(error="empty"), 400
        state.record(*args)
        return jsonify(tick_after=None if snap["never_tick"] else snap["tick_delay"])

    @app.post("/_standin/api/use_here")
    def api_use_here():
        state.configure(use_here_conflict=False)
        return jsonify(ok=True)

    # --- controls for tests in other processes (curl-able) ----------------------------
    @app.post("/_standin/login")
    def ctl_login():
        state.login()
        return jsonify(ok=True)

    @app.post("/_standin/logout")
    def ctl_logout():
        state.logout()
        return jsonify(ok=True)

    @app.post("/_standin/reset")
    def ctl_reset():
        state.reset()
        return jsonify(ok=True)

    @app.post("/_standin/show_use_here")
    def ctl_use_here():
        state.configure(use_here_conflict=True)
        return jsonify(ok=True)

    @app.post("/_standin/invalid")
    def ctl_invalid():
        state.configure(invalid_numbers=request.get_json(force=True).get("phones", []))
        return jsonify(ok=True)

    @app.post("/_standin/config")
    def ctl_config():
        try:
            state.configure(**request.get_json(force=True))
        except (KeyError, TypeError, ValueError) as exc:
            return jsonify(error=f"bad option: {exc}"), 400
        return jsonify(ok=True)

    @app.get("/_standin/messages")
    def ctl_messages():
        return jsonify(messages=state.messages())

    add_inbox_routes(app, state)
    return app
