"""The suppression list: numbers nobody may message again, on any channel, until removed.

One rule, enforced where rows are written and where they are handed out, so no path can
send to a number after it opted out:

- `add_suppressions` cancels the number's waiting rows in every job, in its own write.
- A job written after that (a /send that checked the list a moment before, a resend)
  has those numbers' rows cancelled inside the transaction that inserts them.
- A row that was in flight during the opt-out and then goes back to waiting (a retry, a
  fallback to SMS, a recovery that found it unsent) is cancelled in the same write that
  sends it back (`cancel_if_opted_out`, called by MessageStore), so the claim, which is
  benchmarked, checks nothing.

So a row for a suppressed number is only ever sent when its job was created after the
suppression, and the only such job is the opt-out confirmation (`queue_confirmation`).
A row already being sent when the opt-out arrives is the one exception nobody can take back.
"""

from __future__ import annotations

import json
import math
import secrets

from .channels import job_channel
from .jobs import JobStore, NewJob, Recipient
from .outcomes import complete_if_done
from .store import like_pattern

REASONS = ("keyword", "manual", "import")
CONFIRMATION_NAME = "Opt-out confirmation"

_CANCEL = (
    "UPDATE messages SET status = 'cancelled', error = 'opted_out', updated_at = ?"
    " WHERE status IN ('pending', 'retrying') AND {where} RETURNING job_id"
)


class SuppressionStore(JobStore):
    """Suppressions; mixed into `Queue` ahead of the job and message stores, whose row
    row writing (`_write_job`) it wraps with the rule above."""

    def add_suppressions(
        self, phones: list[str], reason: str, source: str = "", inbound_id: int | None = None
    ) -> list[str]:
        """Suppress the E.164 `phones` not suppressed yet; those newly added, in order.

        In the same transaction their waiting rows in every job (running ones too) end
        `cancelled` with error `opted_out`, and jobs left with nothing open complete.
        """
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {', '.join(REASONS)}")
        wanted = list(dict.fromkeys(phones))
        if not wanted:
            return []
        now = self.clock()
        with self.db.write() as conn:
            return self._suppress(conn, wanted, reason, source, inbound_id, now)

    def _suppress(self, conn, wanted, reason, source, inbound_id, now) -> list[str]:
        known = _present(conn, wanted)
        added = [p for p in wanted if p not in known]
        conn.executemany(
            "INSERT INTO suppressions (phone, reason, source, inbound_id, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            ((p, reason, source, inbound_id, now) for p in added),
        )
        if added:
            # Only the new ones: an already suppressed number has no waiting row but,
            # perhaps, its confirmation, which a repeated STOP must not cancel.
            self._cancel(conn, "phone IN (SELECT value FROM json_each(?))", json.dumps(added))
        return added

    def remove_suppression(self, phone: str) -> bool:
        """Take `phone` off the list (a start keyword, or a person); False when absent.

        Rows cancelled while it was suppressed stay cancelled: a person may resend them.
        """
        with self.db.write() as conn:
            return _unsuppress(conn, phone)

    def _apply_keyword(self, conn, phone: str, channel: str, keyword: str, inbound_id: int):
        """A reply's STOP or START, inside the write that stores the reply (InboundStore)."""
        if keyword == "opt_out":
            self._suppress(conn, [phone], "keyword", channel, inbound_id, self.clock())
        elif keyword == "opt_in":
            _unsuppress(conn, phone)

    def suppressed(self, phones) -> set[str]:
        """Which of `phones` (E.164) are suppressed; one query however many are asked."""
        wanted = list(phones)
        if not wanted:
            return set()
        with self.db.read() as conn:
            return _present(conn, wanted)

    def list_suppressions(
        self, search: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict], int]:
        """A page of the list, newest first, and how many match; `search` looks in the
        number (digits as typed, with or without +) and in the source."""
        where, params = "", []
        if search:
            like = like_pattern(search)
            where = "WHERE phone LIKE ? ESCAPE '\\' OR source LIKE ? ESCAPE '\\'"
            params = [like, like]
        with self.db.read() as conn:
            total = conn.execute(f"SELECT count(*) FROM suppressions {where}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT * FROM suppressions {where} ORDER BY created_at DESC, phone"
                " LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [dict(r) for r in rows], total

    def iter_suppressions(self, batch: int = 2_000):
        """Every suppression in number order, read in batches (for the CSV export)."""
        last = ""
        while True:
            rows = (
                self.db.connection()
                .execute(
                    "SELECT * FROM suppressions WHERE phone > ? ORDER BY phone LIMIT ?",
                    (last, batch),
                )
                .fetchall()
            )
            if not rows:
                return
            yield from (dict(r) for r in rows)
            last = rows[-1]["phone"]

    def queue_confirmation(self, phone: str, text: str, channel: str) -> dict | None:
        """Queue OPT_OUT_CONFIRMATION `text` to `phone`, which has just opted out: a
        one-recipient job on job channel `channel`, the one message the list lets through.

        Once per opt-out (its Idempotency-Key names the suppression). None when `text` is
        blank, the number is not suppressed, or this opt-out was confirmed already.
        """
        if not text.strip():
            return None
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT created_at FROM suppressions WHERE phone = ?", (phone,)
            ).fetchone()
            if row is None:
                return None
            key = f"opt-out-confirmation {phone} {row['created_at']!r}"
            if conn.execute("SELECT 1 FROM jobs WHERE idempotency_key = ?", (key,)).fetchone():
                return None
            # Created strictly after the suppression, so the claim lets its row through,
            # even under a clock that has not moved since.
            now = max(self.clock(), math.nextafter(row["created_at"], math.inf))
            job_id = "j_" + secrets.token_hex(8)
            job = NewJob(
                channel=channel,
                template=text,
                name=CONFIRMATION_NAME,
                idempotency_key=key,
                request_hash=key,
            )
            first = job_channel(channel).first
            # JobStore's own writer: ours would cancel this row like any other.
            JobStore._write_job(self, conn, job_id, job, [Recipient(phone, text, first)], now)
            return self._job_row(conn, job_id)

    def _write_job(self, conn, job_id: str, job: NewJob, recipients, now: float) -> None:
        """Write the job, then cancel its rows for suppressed numbers in the same transaction
        (a /send that checked the list before a STOP came in, a resend of opted-out rows)."""
        super()._write_job(conn, job_id, job, recipients, now)
        self._cancel(
            conn,
            "job_id = ? AND phone IN (SELECT phone FROM suppressions)",
            job_id,
            now=now,
        )

    def _cancel(self, conn, where: str, param, now: float | None = None) -> None:
        """Cancel waiting rows matching `where` as opted out; complete the jobs left empty."""
        now = self.clock() if now is None else now
        jobs = {r["job_id"] for r in conn.execute(_CANCEL.format(where=where), (now, param))}
        for job_id in sorted(jobs):
            complete_if_done(conn, job_id, now)


def _unsuppress(conn, phone: str) -> bool:
    return conn.execute("DELETE FROM suppressions WHERE phone = ?", (phone,)).rowcount == 1


def _present(conn, phones: list[str]) -> set[str]:
    """The suppressed ones among `phones`: one statement, one primary-key probe each."""
    found = conn.execute(
        "SELECT phone FROM suppressions WHERE phone IN (SELECT value FROM json_each(?))",
        (json.dumps(phones),),
    )
    return {r["phone"] for r in found}
