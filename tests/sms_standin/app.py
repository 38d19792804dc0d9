"""A local stand-in for the phone gateway: the SMSGate local-server API, state in a Python object.

Message states are not driven by a thread: each message keeps its arrival time and a plan of
states per recipient, and a read works out how far along the plan it is (one step every
``step_delay`` seconds). Tests steer faults from Python (``GatewayServer.fail_message()``...) or
over HTTP (``/_standin/...``) and read back what the phone received with ``accepted()``.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from datetime import UTC, datetime

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .inbox import INBOX_OPTIONS, PhoneInbox
from .inbox_routes import add_routes

OPTIONS = {  # option name -> default; every one can also be changed at run time
    "username": "sms",
    "password": "secret",
    "health": "pass",  # "pass" | "warn" | "fail"
    "step_delay": 0.1,  # seconds between Pending -> Processed -> Sent -> Delivered
    "bad_phone": "reject",  # "reject": 400 (cloud server); "fail": 202 then Failed (the phone)
    "device_id": "sTandInPh0neGw8xQ2rK7",
}
# What Ktor's basic-auth provider sends on the real phone (WebService.kt: realm, UTF-8 charset).
CHALLENGE = 'Basic realm="Access to SMS Gateway", charset=UTF-8'
VERSION, RELEASE_ID = "1.67.0", 1
PHONE = re.compile(r"\+?[1-9]\d{6,14}")  # E.164-ish, after dropping spaces, dashes, brackets
DEFAULT_REASON = "RESULT_ERROR_GENERIC_FAILURE"


class BadRequest(Exception):
    """A send request the gateway refuses with 400 {"message": str(exc)}."""


def _digits(phone) -> str:
    return re.sub(r"\D", "", str(phone or ""))


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def _overall(states: list[str]) -> str:
    """The message's state from its recipients' states, in the real app's order of precedence."""
    for state in ("Pending", "Cancelling", "Cancelled", "Processed"):
        if state in states:
            return state
    for state in ("Failed", "Delivered"):
        if all(s == state for s in states):
            return state
    return "Sent"


def parse_send(body, skip_validation: bool, bad_phone: str, device_id: str) -> dict:
    """Check a POST /messages body as the app does; the message's fields, or BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest("Failed to convert request body to class PostMessageRequest")
    msg_id, legacy, text_message = body.get("id"), body.get("message"), body.get("textMessage")
    phones, ttl = body.get("phoneNumbers"), body.get("ttl")
    if (
        (msg_id is not None and not isinstance(msg_id, str))
        or (legacy is not None and not isinstance(legacy, str))
        or (text_message is not None and not isinstance(text_message, dict))
        or not isinstance(phones, (list, type(None)))
        or not all(isinstance(p, str) for p in phones or [])
        or (ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)))
    ):
        raise BadRequest("Failed to convert request body to class PostMessageRequest")
    kinds = [k for k in (text_message, body.get("dataMessage"), legacy) if k is not None]
    if not kinds:
        raise BadRequest("Must specify exactly one of: textMessage, dataMessage, or message")
    if len(kinds) > 1:
        raise BadRequest("Cannot specify multiple message types simultaneously")
    if body.get("dataMessage") is not None:
        raise BadRequest("dataMessage is not supported by this stand-in")
    text = legacy if legacy is not None else text_message.get("text")
    if not isinstance(text, str) or not text:
        raise BadRequest("Text message is empty")
    if not phones:
        raise BadRequest("Empty phone numbers list")
    if ttl is not None and body.get("validUntil") is not None:
        raise BadRequest("fields conflict: ttl and validUntil")
    if ttl is not None and ttl < 0:
        raise BadRequest("message already expired")
    if body.get("deviceId") not in (None, device_id):
        raise BadRequest("Invalid device ID")
    invalid = (
        set()
        if skip_validation
        else {p for p in phones if not PHONE.fullmatch(re.sub(r"[\s().-]", "", p))}
    )
    if invalid and bad_phone == "reject":
        raise BadRequest(f"Invalid phone number: {sorted(invalid)[0]}")
    return {
        "id": msg_id if msg_id is not None else secrets.token_urlsafe(16)[:21],
        "text": text,
        "phones": list(phones),
        "invalid": invalid,
        "with_report": body.get("withDeliveryReport") is not False,  # the app's default: true
        "is_encrypted": bool(body.get("isEncrypted")),
    }


class _Message:
    """One accepted message: per recipient, the states it will pass through, one per step."""

    def __init__(self, fields: dict, plans: list[list[str]], errors: list, step: float):
        self.id, self.text, self.phones = fields["id"], fields["text"], fields["phones"]
        self.is_encrypted = fields["is_encrypted"]
        self.plans, self.errors, self.step = plans, errors, step
        self.born, self.born_wall = time.monotonic(), time.time()
        self.cancelled_after: float | None = None  # seconds after arrival

    def _steps(self, now: float) -> int:
        last = max(len(plan) for plan in self.plans) - 1
        if self.step <= 0:
            return last
        return min(last, int((now - self.born) / self.step))

    def view(self, device_id: str, content: bool = True) -> dict:
        """The message state JSON as the app renders it, as of now."""
        if self.cancelled_after is not None:
            recipients = ["Cancelled"] * len(self.phones)
            states = {"Pending": 0.0, "Cancelled": self.cancelled_after}
        else:
            states = {}
            for step in range(self._steps(time.monotonic()) + 1):
                recipients = [plan[min(step, len(plan) - 1)] for plan in self.plans]
                states.setdefault(_overall(recipients), step * self.step)
        body = {
            "id": self.id,
            "deviceId": device_id,
            "state": _overall(recipients),
            "isHashed": False,
            "isEncrypted": self.is_encrypted,
        }
        if content:
            body["textMessage"] = {"text": self.text}
        body["recipients"] = []
        for phone, state, error in zip(self.phones, recipients, self.errors, strict=True):
            recipient = {"phoneNumber": phone, "state": state}
            if state == "Failed":  # the app's JSON leaves out null fields
                recipient["error"] = error
            body["recipients"].append(recipient)
        body["states"] = {s: _iso(self.born_wall + after) for s, after in states.items()}
        return body

    def cancel(self) -> bool:
        """Cancel if still Pending (True), as DELETE /messages/{id} does."""
        if self.cancelled_after is None:
            if self._steps(time.monotonic()) > 0:
                return False
            self.cancelled_after = time.monotonic() - self.born
        return True


class GatewayState:
    """Everything the fake phone knows; every access holds ``self.lock``."""

    def __init__(self, **options):
        mine = {k: options.pop(k) for k in list(options) if k in INBOX_OPTIONS}
        self.inbox = PhoneInbox(lambda: self.device_id, **mine)  # receiving: inbox.py
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise TypeError(f"unknown stand-in options: {sorted(unknown)}")
        self.lock = threading.RLock()
        self._initial = {**OPTIONS, **options}
        self._wake = threading.Event()
        self.reset()

    def reset(self) -> None:
        """Forget messages, faults and the request log; back to the construction options."""
        with self.lock:
            self._messages: dict[str, _Message] = {}
            self._accepted: list[dict] = []
            self._lost: list[dict] = []
            self._log: list[tuple[str, str, int]] = []
            self._faults: dict[str, list[tuple[str, str | None]]] = {}
            self.failure: tuple[int, object] | None = None
            self.hang(0)
            self.configure(**self._initial)
            self.inbox.reset()

    def configure(self, **options) -> None:
        """Change options at run time (names as in ``OPTIONS``); KeyError for unknown ones."""
        with self.lock:
            for name, value in options.items():
                if name not in OPTIONS:
                    raise KeyError(name)
                if name == "health" and value not in ("pass", "warn", "fail"):
                    raise ValueError(f"health must be pass, warn or fail, not {value!r}")
                if name == "bad_phone" and value not in ("reject", "fail"):
                    raise ValueError(f"bad_phone must be reject or fail, not {value!r}")
                setattr(self, name, float(value) if name == "step_delay" else str(value))

    # --- faults --------------------------------------------------------------------------
    def add_fault(self, kind: str, phone: str, reason: str | None = None) -> None:
        """Queue a one-shot fault ("fail", "lose", "stick") for the next message to ``phone``."""
        with self.lock:
            self._faults.setdefault(_digits(phone), []).append((kind, reason))

    def _take_fault(self, phone: str) -> tuple[str | None, str | None]:
        queue = self._faults.get(_digits(phone))
        return queue.pop(0) if queue else (None, None)

    def fail_with(self, status: int | None, body=None) -> None:
        """Answer every request but /_standin/* with ``status`` (None: stop)."""
        if status is not None and not 100 <= int(status) <= 599:
            raise ValueError(f"not an HTTP status: {status!r}")
        with self.lock:
            self.failure = None if status is None else (int(status), body)

    def hang(self, seconds: float) -> None:
        """Hold answers to /messages* for ``seconds``; 0 stops and frees requests held now."""
        with self.lock:
            self.hang_seconds = max(0.0, float(seconds))
            if not self.hang_seconds:
                self._wake.set()
                self._wake = threading.Event()

    def hang_wait(self) -> None:
        with self.lock:
            seconds, wake = self.hang_seconds, self._wake
        if seconds:
            wake.wait(seconds)

    # --- the gateway itself --------------------------------------------------------------
    def check_auth(self, auth) -> bool:
        with self.lock:
            return (
                auth is not None
                and auth.type == "basic"
                and secrets.compare_digest(str(auth.username).encode(), self.username.encode())
                and secrets.compare_digest(str(auth.password).encode(), self.password.encode())
            )

    def health_body(self) -> dict:
        """The /health JSON, with check names and units as the app reports them."""
        with self.lock:
            health = self.health

        def check(status, value, unit, description):
            return {
                "status": status,
                "observedValue": value,
                "observedUnit": unit,
                "description": description,
            }

        return {
            "status": health,
            "version": VERSION,
            "releaseId": RELEASE_ID,
            "checks": {
                "messages:failed": check("pass", 0, "messages", "Failed messages for last hour"),
                "connection:status": check(
                    "fail" if health == "fail" else "pass",
                    0 if health == "fail" else 1,
                    "boolean",
                    "Internet connection status",
                ),
                "battery:level": check(
                    "warn" if health == "warn" else "pass",
                    20 if health == "warn" else 80,
                    "percent",
                    "Battery level in percent",
                ),
                "battery:charging": check("pass", 2, "flags", "Is the phone charging?"),
            },
        }

    def submit(self, body, skip_validation: bool) -> tuple[int, dict]:
        """Take a send request: (202, state), (400 or 409, {"message": ...})."""
        with self.lock:
            try:
                fields = parse_send(body, skip_validation, self.bad_phone, self.device_id)
            except BadRequest as exc:
                return 400, {"message": str(exc)}
            if fields["id"] in self._messages:
                return 409, {"message": "Message with the same ID already exists"}
            plans, errors, lost = [], [], False
            for phone in fields["phones"]:
                if phone in fields["invalid"]:
                    plans.append(["Pending", "Failed"])
                    errors.append("sendSMS: Invalid phone number")
                    continue
                kind, reason = self._take_fault(phone)
                lost = lost or kind == "lose"
                plans.append(
                    {
                        "fail": ["Pending", "Processed", "Failed"],
                        "stick": ["Pending", "Processed"],
                    }.get(
                        kind,
                        (
                            ["Pending", "Processed", "Sent", "Delivered"]
                            if fields["with_report"]
                            else ["Pending", "Processed", "Sent"]
                        ),
                    )
                )
                errors.append(f"Send result: {reason}" if kind == "fail" else None)
            message = _Message(fields, plans, errors, self.step_delay)
            if not lost:  # a lost message leaves its id free: the phone never stored it
                self._messages[message.id] = message
            for phone in message.phones:
                (self._lost if lost else self._accepted).append(
                    {
                        "id": message.id,
                        "phone": phone,
                        "text": message.text,
                        "at": message.born_wall,
                    }
                )
            return 202, message.view(self.device_id)

    def view(self, msg_id: str) -> dict | None:
        with self.lock:
            message = self._messages.get(msg_id)
            return message and message.view(self.device_id)

    def cancel(self, msg_id: str) -> tuple[int, dict | None]:
        """DELETE /messages/{id}: (200, state), (400, {"message"}) or (404, None)."""
        with self.lock:
            message = self._messages.get(msg_id)
            if message is None:
                return 404, None
            if not message.cancel():
                return 400, {"message": f"Message {msg_id} is not in Pending state"}
            return 200, message.view(self.device_id, content=False)

    # --- what tests read back ------------------------------------------------------------
    def log_request(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self._log.append((method, path, status))

    def request_log(self) -> list[tuple[str, str, int]]:
        with self.lock:
            return list(self._log)

    def accepted(self) -> list[dict]:
        with self.lock:
            return [dict(m) for m in self._accepted]

    def lost(self) -> list[dict]:
        with self.lock:
            return [dict(m) for m in self._lost]


def _empty(status: int) -> Response:
    """A bodiless answer, as Ktor sends for 401, 404 and unrouted paths."""
    response = Response(status=status)
    del response.headers["Content-Type"]
    return response


def create_app(state: GatewayState) -> Flask:
    """Build the Flask app serving the gateway API and the /_standin/ control endpoints."""
    app = Flask(__name__)
    app.json.sort_keys = False  # keep the app's field order: easier to read in a failure
    add_routes(app, state.inbox)

    @app.before_request
    def gate():
        if request.path.startswith("/_standin/"):
            return None
        failure = state.failure
        if failure is not None:
            status, body = failure
            if isinstance(body, str):
                return Response(body, status, mimetype="text/html")
            return jsonify(body if body is not None else {"message": f"forced {status}"}), status
        if request.path != "/health" and not state.check_auth(request.authorization):
            response = _empty(401)
            response.headers["WWW-Authenticate"] = CHALLENGE
            return response
        return None

    @app.after_request
    def maybe_hang(response):
        if request.path.startswith("/message"):
            state.hang_wait()  # after the work is done: a timed-out POST was still accepted
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return _empty(exc.code or 500)

    @app.get("/health")
    def health():
        body = state.health_body()
        return jsonify(body), 500 if body["status"] == "fail" else 200

    @app.post("/message")
    @app.post("/messages")
    def send():
        skip = request.args.get("skipPhoneValidation")
        if skip not in (None, "true", "false"):
            return jsonify(message=f"The string doesn't represent a boolean value: {skip}"), 400
        try:
            body = json.loads(request.get_data(as_text=True))
        except ValueError as exc:
            return jsonify(
                message=f"Failed to convert request body to class PostMessageRequest: {exc}"
            ), 400
        status, payload = state.submit(body, skip == "true")
        return jsonify(payload), status

    @app.get("/message/<msg_id>")
    @app.get("/messages/<msg_id>")
    def get_message(msg_id):
        body = state.view(msg_id)
        return _empty(404) if body is None else jsonify(body)

    @app.delete("/message/<msg_id>")
    @app.delete("/messages/<msg_id>")
    def cancel_message(msg_id):
        status, body = state.cancel(msg_id)
        return _empty(404) if body is None else (jsonify(body), status)

    # --- controls for tests in other processes (curl-able) ----------------------------
    controls = {
        "fail_with": lambda a: state.fail_with(a.get("status"), a.get("body")),
        "fail_message": lambda a: state.add_fault(
            "fail", a["phone"], a.get("reason", DEFAULT_REASON)
        ),
        "lose_message": lambda a: state.add_fault("lose", a["phone"]),
        "stick_in_processed": lambda a: state.add_fault("stick", a["phone"]),
        "hang": lambda a: state.hang(a.get("seconds", 0)),
        "credentials": lambda a: state.configure(username=a["username"], password=a["password"]),
        "health": lambda a: state.configure(health=a["status"]),
        "config": lambda a: state.configure(**a),
        "reset": lambda a: state.reset(),
    }

    @app.post("/_standin/<name>")
    def control(name):
        if name not in controls:
            return jsonify(error=f"unknown control {name!r}"), 404
        try:
            controls[name](request.get_json(force=True, silent=True) or {})
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            return jsonify(error=f"bad arguments: {exc!r}"), 400
        return jsonify(ok=True)

    @app.get("/_standin/accepted")
    def ctl_accepted():
        return jsonify(accepted=state.accepted())

    @app.get("/_standin/lost")
    def ctl_lost():
        return jsonify(lost=state.lost())

    @app.get("/_standin/requests")
    def ctl_requests():
        return jsonify(requests=state.request_log())

    wsgi_app = app.wsgi_app

    def logged(environ, start_response):  # status as sent, 401s and forced failures included
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")

        def start(status, headers, exc_info=None):
            if not path.startswith("/_standin/"):
                state.log_request(method, path, int(status.split()[0]))
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)

    app.wsgi_app = logged
    return app


class _QuietHandler(WSGIRequestHandler):
    """Tests poll message states often; a log line per request would drown the tests' own."""

    def log_request(self, *args, **kwargs):
        pass


class _Server(ThreadedWSGIServer):
    """werkzeug's threaded server that can re-bind its port and drop open connections."""

    allow_reuse_address = True  # re-open on the same port while old connections sit in TIME_WAIT

    def __init__(self, *args, **kwargs):
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut connections still open (a request held by ``hang``), as leaving the Wi-Fi would."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class GatewayServer:
    """Run the stand-in on 127.0.0.1 (a free port unless ``port`` is given) in a daemon thread.

    ``with GatewayServer(step_delay=0.05) as gw: requests.post(gw.url + "/messages", ...)``
    """

    def __init__(self, port: int = 0, **options):
        self.state = GatewayState(**options)
        self.inbox = self.state.inbox  # receive(), webhooks, signing key: see inbox.py
        self._app = create_app(self.state)
        self._switch = threading.Lock()
        self._server: _Server | None = None
        self.port = port
        self._open()
        self.url = f"http://127.0.0.1:{self.port}"

    def _open(self) -> None:
        try:
            server = _Server("127.0.0.1", self.port, self._app, handler=_QuietHandler)
        except SystemExit:  # werkzeug exits when it cannot bind; a test wants an error
            raise OSError(f"sms stand-in: cannot listen on 127.0.0.1:{self.port}") from None
        self._server, self.port = server, server.server_port
        self._thread = threading.Thread(
            target=server.serve_forever,
            daemon=True,
            kwargs={"poll_interval": 0.05},
            name="sms-standin",
        )
        self._thread.start()

    def _close(self) -> None:
        server, self._server = self._server, None
        server.shutdown()
        server.server_close()
        server.drop_connections()
        self._thread.join(5)

    def stop(self) -> None:
        """Stop serving; requests held by ``hang`` are let go."""
        self.state.hang(0)
        self.state.inbox.close()
        with self._switch:
            if self._server is not None:
                self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # Controls; all but refuse_connections are also /_standin/... endpoints.
    def refuse_connections(self, on: bool = True) -> None:
        """While on, nothing listens on the port (connection refused); off listens again."""
        with self._switch:
            if on and self._server is not None:
                self._close()
            elif not on and self._server is None:
                self._open()

    def fail_with(self, status: int | None, body=None) -> None:
        """Answer every request but /_standin/* with ``status``; ``body``: str (sent as
        text/html), JSON-able, or None for ``{"message": "forced <status>"}``; None stops."""
        self.state.fail_with(status, body)

    def fail_message(self, phone: str, reason: str = DEFAULT_REASON) -> None:
        """The next message to ``phone`` ends Failed with "Send result: <reason>"."""
        self.state.add_fault("fail", phone, reason)

    def lose_message(self, phone: str) -> None:
        """The next message to ``phone`` gets 202, then GET answers 404; see ``lost()``."""
        self.state.add_fault("lose", phone)

    def stick_in_processed(self, phone: str) -> None:
        """The next message to ``phone`` stays Processed for ever."""
        self.state.add_fault("stick", phone)

    def hang(self, seconds: float) -> None:
        """Hold every /messages* answer ``seconds`` (a POST is accepted first); 0: stop."""
        self.state.hang(seconds)

    def set_credentials(self, username: str, password: str) -> None:
        self.state.configure(username=username, password=password)

    def set_health(self, status: str) -> None:
        """Health "pass" or "warn" (both 200), or "fail" (500)."""
        self.state.configure(health=status)

    def configure(self, **options) -> None:
        self.state.configure(**options)

    def reset(self) -> None:
        """Back to the construction options, listening again, with nothing received."""
        self.refuse_connections(False)
        self.state.reset()

    def accepted(self) -> list[dict]:
        """Every recipient of every accepted message, in arrival order: id, phone, text, at."""
        return self.state.accepted()

    def lost(self) -> list[dict]:
        """Recipients of messages taken by ``lose_message``, as ``accepted()`` shows them."""
        return self.state.lost()

    def request_log(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request but /_standin/*, in answer order."""
        return self.state.request_log()
