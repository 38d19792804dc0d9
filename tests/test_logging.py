"""Logs: one JSON object a line with job and message ids, and never a secret."""

from __future__ import annotations

import io
import json
import logging
import threading

from message_queue import NewJob, Recipient
from tests.sms_standin import GatewayServer
from utils.logs import JsonFormatter, setup_logging
from worker.sms import SmsTransport
from worker.sms.gateway import SmsGateClient
from worker.worker import Worker

from .conftest import API_KEY


def test_json_format_is_one_object_a_line_with_ids():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.json")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    try:
        log.warning("sent message %s", 7, extra={"job_id": "j_1", "message_id": 7})
        log.info("multi\nline")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["message"] == "sent message 7" and first["job_id"] == "j_1"
    assert first["message_id"] == 7 and first["level"] == "WARNING"
    assert json.loads(lines[1])["message"] == "multi\nline"


def test_setup_logging_installs_one_handler():
    setup_logging("DEBUG", "json")
    root = logging.getLogger()
    try:
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        setup_logging("WARNING", "text")


def test_the_api_never_logs_the_key(app, client, caplog):
    caplog.set_level(logging.DEBUG)
    client.get("/jobs", headers={"X-API-Key": API_KEY})
    client.get("/jobs", headers={"Authorization": f"Bearer {API_KEY}-wrong"})
    client.post("/send", data="{", content_type="application/json", headers={"X-API-Key": API_KEY})
    page = client.get("/app").get_data(as_text=True)
    token = page.split('name="csrf" value="')[1].split('"')[0]
    client.post("/app/sign-in", data={"csrf": token, "api_key": API_KEY + "x"})
    client.post("/app/sign-in", data={"csrf": token, "api_key": API_KEY})
    assert API_KEY not in caplog.text


def test_the_sms_worker_never_logs_the_gateway_password(settings, queue, caplog):
    caplog.set_level(logging.DEBUG)
    password = "phone-password-7f3a9c"
    with GatewayServer(step_delay=0) as gw:
        gw.set_credentials("sms", "another-password")  # refused: the error path is logged
        s = settings.replace(
            sms_gateway_url=gw.url, sms_gateway_password=password, worker_id="sms-log"
        )
        queue.create_job(
            NewJob(channel="sms", template="x"),
            [Recipient(phone="+15550001", text="hi", channel="sms")],
        )
        client = SmsGateClient(gw.url, "sms", password, timeout=(1, 1))
        worker = Worker(
            s, queue, SmsTransport(s, client=client), threading.Event(), idle_poll=0, session_poll=0
        )
        for _ in range(3):
            worker.run_once()
        assert [w["state"] for w in queue.list_workers()] == ["gateway_down"]
    assert "refused" in caplog.text or "gateway" in caplog.text
    assert password not in caplog.text
