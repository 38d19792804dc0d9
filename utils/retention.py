"""Attachment retention: a job's file is deleted some days after the job finished.

Contact lists and their attachments are other people's data; keeping them for ever is a
liability. The worker calls `sweep_attachments` while it is idle; nothing here knows Flask.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)
DAY = 86_400


def sweep_attachments(queue, upload_dir: str, retention_days: float, now: float) -> list[str]:
    """Delete the files of jobs finished more than `retention_days` ago; the job ids cleared.

    Only files inside `upload_dir` are deleted (a file already gone is fine); the job keeps
    the file's name so its status still says what was attached. 0 days keeps files for ever.
    """
    if retention_days <= 0:
        return []
    before = now - retention_days * DAY
    folder = Path(upload_dir).resolve()
    cleared = []
    for job in queue.expired_attachments(before):
        path = queue.release_attachment(job["id"], before)
        if path is None:  # a resend began to use the file meanwhile
            continue
        cleared.append(job["id"])
        target = Path(path).resolve()
        if folder not in target.parents:
            # Not a file this service stored (UPLOAD_DIR moved?): forget it, never delete it.
            log.warning(
                "attachment of job %s is outside %s; left in place: %s", job["id"], folder, target
            )
            continue
        target.unlink(missing_ok=True)
        log.info("deleted the attachment of job %s after %g days", job["id"], retention_days)
    return cleared
