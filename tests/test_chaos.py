"""The chaos runs of tests/chaos.py at `--quick` sizes, so `make test` proves the promise under
faults every time: workers killed mid-send and restarted, WhatsApp logged out, the phone cut
off, the API restarted, SIGTERM mid-send. `make chaos` runs the full sizes.

Each run draws its fault moments from a fresh seed; a failure names it and the command that
replays the plan.
"""

from __future__ import annotations

import random

import pytest

from tests.chaos import run_scenario

SEED = random.SystemRandom().randrange(10**6)


def holds(name: str, tmp_path) -> None:
    result = run_scenario(name, tmp_path, SEED, quick=True)
    print(result.line())
    assert result.ok, "\n".join(
        [
            result.line(),
            *result.problems[:20],
            f"replay: python -m tests.chaos --quick --seed {SEED} --scenario {name}",
            f"logs: {tmp_path}",
        ]
    )


@pytest.mark.browser
def test_whatsapp_worker_killed_mid_job_sends_each_message_once(chromium, tmp_path):
    holds("whatsapp-kill", tmp_path)


def test_sms_worker_killed_mid_job_sends_each_message_once(tmp_path):
    holds("sms-kill", tmp_path)


@pytest.mark.browser
def test_whatsapp_logged_out_mid_job_resumes_after_login_without_duplicates(chromium, tmp_path):
    holds("whatsapp-logout", tmp_path)


def test_gateway_unreachable_mid_job_resumes_without_duplicates(tmp_path):
    holds("sms-gateway-down", tmp_path)


def test_api_restarted_while_jobs_run_loses_nothing(tmp_path):
    holds("api-restart", tmp_path)


@pytest.mark.browser
def test_sigterm_mid_send_finishes_the_message_and_exits_zero(chromium, tmp_path):
    holds("sigterm", tmp_path)


def test_the_reckoning_catches_a_duplicate_a_lost_message_and_a_row_left_sending(tmp_path):
    """The checks above have teeth: a broken run is reported, not summed up as fine."""
    import requests

    from tests.chaos_rigs import SmsRig
    from tests.chaos_support import Result, reckon

    with SmsRig(tmp_path) as rig:
        rig.queue_job(4, "reckon")
        rows = [rig.queue.claim_next("sms", "w") for _ in range(4)]
        for gid, row in (("a", rows[0]), ("b", rows[0]), ("c", rows[2]), ("d", rows[3])):
            requests.post(
                f"{rig.gateway.url}/messages",
                auth=("sms", "secret"),
                timeout=5,
                json={
                    "id": gid,
                    "textMessage": {"text": row["text"]},
                    "phoneNumbers": [row["phone"]],
                },
            ).raise_for_status()
        for row in (rows[0], rows[1], rows[3]):
            rig.queue.mark_sent(row["id"], "w")
        result = Result("reckon", "faults")
        reckon(result, rig, unknown_ok=False)

    assert (result.messages, result.once, result.duplicates, result.lost) == (4, 2, 1, 1)
    assert result.integrity == "ok" and not result.ok
    assert [p.split(" ", 2)[-1] for p in result.problems] == [
        f"to {rows[0]['phone']} arrived 2 times (row says sent)",
        f"to {rows[1]['phone']} never arrived (row says sent)",
        f"to {rows[2]['phone']} left sending",
        "is running, not completed",
    ]
