"""Running the WhatsApp Web stand-in for a test: a server thread and its Python controls."""

from __future__ import annotations

import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import StandinState, _digits, create_app


class _QuietHandler(WSGIRequestHandler):
    """Pages poll their state and tests send many messages; a log line per request would drown
    the tests' own."""

    def log_request(self, *args, **kwargs):
        pass


class StandinServer:
    """Run the stand-in on 127.0.0.1 on a free port in a daemon thread.

    ``with StandinServer(logged_in=True) as wa: driver.get(wa.url + "/send?phone=...")``
    """

    def __init__(self, **options):
        self.state = StandinState(**options)
        self._server = make_server(
            "127.0.0.1", 0, create_app(self.state), threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="wa-standin"
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # Controls, the same as the /_standin/... endpoints.
    def login(self) -> None:
        self.state.login()

    def logout(self) -> None:
        self.state.logout()

    def set_invalid(self, phones) -> None:
        self.state.configure(invalid_numbers=phones)

    def show_use_here(self) -> None:
        self.state.configure(use_here_conflict=True)

    def configure(self, **options) -> None:
        self.state.configure(**options)

    def reset(self) -> None:
        self.state.reset()

    def messages(self) -> list[dict]:
        return self.state.messages()

    def incoming(self, phone, text="", media=None, caption=None, name=None, at=None) -> dict:
        """Drop a message from `phone` into its chat (emoji in `text` are drawn as images);
        `at` (epoch seconds) backdates it, and its chat's place in the list with it."""
        return self.state.incoming(phone, text, media, caption, name, at)

    def read_on_phone(self, phone) -> None:
        """As if the chat was read on the phone: no badge, in no list."""
        self.state.read_on_phone(phone)

    def chat_open(self, phone) -> bool:
        """Whether a live page shows `phone`'s chat (its messages are read on arrival)."""
        with self.state.lock:
            return self.state.book.is_open(_digits(phone))

    def chats(self) -> list[dict]:
        """The chat list as the page shows it: phone, title, preview, unread."""
        return self.state.snapshot()["chats"]
