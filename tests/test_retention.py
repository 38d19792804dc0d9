"""Attachment retention: files go some days after their job finished; a resend then says so."""

from __future__ import annotations

import base64

from tests.conftest import AUTH
from tests.fakes import Clock
from utils.retention import DAY, sweep_attachments

PDF = base64.b64encode(b"%PDF-1.4\n").decode()
NOW = 1_900_000_000.0


def send_with_attachment(client, numbers=("+14155550101",)) -> str:
    resp = client.post(
        "/send",
        headers=AUTH,
        json={
            "message": "Menu",
            "numbers": list(numbers),
            "attachment": {"filename": "menu.pdf", "content_base64": PDF},
        },
    )
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["job_id"]


def finish(queue, job_id: str, at: float) -> None:
    """Mark the job's one message failed and the job stopped at `at` (finished_at)."""
    queue.clock = Clock(at)
    message = queue.claim_next("whatsapp", "w1")
    queue.mark_failed(message["id"], "w1", "not_on_whatsapp")
    if queue.get_job(job_id)["finished_at"] is None:
        queue.stop_job(job_id)
    assert queue.get_job(job_id)["finished_at"] == at


def test_expired_attachments_lists_only_files_past_their_days(client, queue):
    old, recent, running = (send_with_attachment(client, [f"+1415555010{i}"]) for i in range(3))
    finish(queue, old, NOW - 31 * DAY)
    finish(queue, recent, NOW - 29 * DAY)
    expired = queue.expired_attachments(NOW - 30 * DAY)
    assert [job["id"] for job in expired] == [old]
    assert expired[0]["attachment_path"] == queue.get_job(old)["attachment_path"]
    assert queue.get_job(running)["finished_at"] is None


def test_sweep_deletes_the_file_and_keeps_the_name(client, queue, settings):
    job_id = send_with_attachment(client)
    path = queue.get_job(job_id)["attachment_path"]
    finish(queue, job_id, NOW - 31 * DAY)
    assert sweep_attachments(queue, settings.upload_dir, 30, NOW) == [job_id]
    job = queue.get_job(job_id)
    assert job["attachment_path"] is None and job["attachment_name"] == "menu.pdf"
    assert not __import__("os").path.exists(path)
    assert client.get(f"/status/{job_id}", headers=AUTH).get_json()["attachment"] == "menu.pdf"
    assert sweep_attachments(queue, settings.upload_dir, 30, NOW) == []


def test_sweep_keeps_files_younger_than_the_days_and_all_with_zero(client, queue, settings):
    job_id = send_with_attachment(client)
    path = queue.get_job(job_id)["attachment_path"]
    finish(queue, job_id, NOW - 10 * DAY)
    assert sweep_attachments(queue, settings.upload_dir, 30, NOW) == []
    assert sweep_attachments(queue, settings.upload_dir, 0, NOW + 1000 * DAY) == []
    assert queue.get_job(job_id)["attachment_path"] == path


def test_a_file_already_gone_is_fine(client, queue, settings):
    job_id = send_with_attachment(client)
    __import__("os").remove(queue.get_job(job_id)["attachment_path"])
    finish(queue, job_id, NOW - 40 * DAY)
    assert sweep_attachments(queue, settings.upload_dir, 30, NOW) == [job_id]
    assert queue.get_job(job_id)["attachment_path"] is None


def test_a_file_outside_the_upload_folder_is_never_deleted(client, queue, settings, tmp_path):
    job_id = send_with_attachment(client)
    finish(queue, job_id, NOW - 40 * DAY)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert sweep_attachments(queue, str(elsewhere), 30, NOW) == [job_id]
    # Forgotten by the job, but the file (not in the folder the sweep was given) stays.
    assert list((tmp_path / "uploads").iterdir())


def test_a_file_a_newer_resend_still_uses_is_kept(client, queue, settings):
    job_id = send_with_attachment(client)
    path = queue.get_job(job_id)["attachment_path"]
    finish(queue, job_id, NOW - 40 * DAY)
    again = queue.resend(job_id, ["failed"])
    assert again["attachment_path"] == path and again["finished_at"] is None
    assert sweep_attachments(queue, settings.upload_dir, 30, NOW) == []
    assert __import__("os").path.exists(path)


def test_resend_after_the_file_was_deleted_is_a_clear_409(client, queue, settings):
    job_id = send_with_attachment(client)
    finish(queue, job_id, NOW - 31 * DAY)
    sweep_attachments(queue, settings.upload_dir, 30, NOW)
    resp = client.post(f"/jobs/{job_id}/resend", json={"statuses": ["failed"]}, headers=AUTH)
    assert resp.status_code == 409 and resp.mimetype == "application/problem+json"
    detail = resp.get_json()["detail"]
    assert "menu.pdf" in detail and "deleted" in detail and "30 days" in detail
    assert queue.count_jobs(active_only=False) == 1
