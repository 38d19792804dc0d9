"""Workers: heartbeats, the state each shows in /session, and the latest login QR code."""

from __future__ import annotations

from .errors import SenderInUse
from .holds import sender_usage
from .states import DISCONNECTED_AFTER
from .store import Store

__all__ = ["DISCONNECTED_AFTER", "WorkerStore"]


class WorkerStore(Store):
    """Worker rows; mixed into `Queue`, which provides `db` and `clock`."""

    def heartbeat(
        self,
        worker_id: str,
        channel: str,
        state: str,
        current_job_id: str | None = None,
        detail: str | None = None,
        instance: str | None = None,
        may_take_over=None,
    ) -> None:
        """Say this worker is alive, what it is doing and on which job.

        `instance` names this process. While another instance of the same WORKER_ID beats
        (not stopped, heard from within DISCONNECTED_AFTER) this raises SenderInUse, unless
        `may_take_over(its instance)` says that one is gone (a crash on this machine); a
        last `stopped` from a process that lost its name changes nothing.
        """
        now = self.clock()
        with self.db.write() as conn:
            if instance:
                row = conn.execute(
                    "SELECT instance, state, heartbeat_at FROM workers WHERE id = ?", (worker_id,)
                ).fetchone()
                if (
                    row is not None
                    and row["instance"] not in (None, instance)
                    and row["state"] != "stopped"
                    and now - row["heartbeat_at"] < DISCONNECTED_AFTER
                    and not (may_take_over and may_take_over(row["instance"]))
                ):
                    if state == "stopped":
                        return
                    raise SenderInUse(worker_id, row["instance"])
            conn.execute(
                "INSERT INTO workers (id, channel, state, detail, current_job_id, started_at,"
                " heartbeat_at, instance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET channel = excluded.channel,"
                " instance = COALESCE(excluded.instance, workers.instance),"
                " state = excluded.state, detail = excluded.detail,"
                " current_job_id = excluded.current_job_id, heartbeat_at = excluded.heartbeat_at,"
                # A restart under the same id starts a new life: /session shows its start.
                " started_at = CASE WHEN excluded.state = 'starting' THEN excluded.started_at"
                " ELSE workers.started_at END",
                (worker_id, channel, state, detail, current_job_id, now, now, instance),
            )

    def save_qr(self, worker_id: str, png: bytes) -> None:
        """Keep the newest login QR image this worker captured."""
        now = self.clock()
        with self.db.write() as conn:
            conn.execute(
                "UPDATE workers SET qr_png = ?, qr_at = ? WHERE id = ?", (png, now, worker_id)
            )

    def clear_qr(self, worker_id: str) -> None:
        """Forget the QR once logged in: an old code must not be offered for scanning."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE workers SET qr_png = NULL, qr_at = NULL WHERE id = ?", (worker_id,)
            )

    def latest_qr(self, worker_id: str | None = None) -> tuple[bytes, float] | None:
        """The newest QR image of a live worker (`worker_id`'s, or any one's) and when it was
        taken, or None."""
        cutoff = self.clock() - DISCONNECTED_AFTER
        which, params = ("AND id = ?", (cutoff, worker_id)) if worker_id else ("", (cutoff,))
        row = (
            self.db.connection()
            .execute(
                "SELECT qr_png, qr_at FROM workers WHERE qr_png IS NOT NULL AND heartbeat_at >= ?"
                f" AND state = 'qr_required' {which} ORDER BY qr_at DESC LIMIT 1",
                params,
            )
            .fetchone()
        )
        return (bytes(row["qr_png"]), row["qr_at"]) if row else None

    def list_workers(self, usage: bool = False) -> list[dict]:
        """Every known worker, with a silent one shown as `disconnected`; with `usage`, what
        each sent lately against its caps (`holds.sender_usage`)."""
        now = self.clock()
        rows = (
            self.db.connection()
            .execute(
                "SELECT id, channel, state, detail, current_job_id, started_at, heartbeat_at,"
                " qr_png IS NOT NULL AS qr_available FROM workers ORDER BY id"
            )
            .fetchall()
        )
        workers = []
        for r in rows:
            w = dict(r)
            w["heartbeat_age_s"] = round(max(now - w["heartbeat_at"], 0.0), 1)
            if w["state"] != "stopped" and w["heartbeat_age_s"] > DISCONNECTED_AFTER:
                w["state"] = "disconnected"
            w["qr_available"] = bool(w["qr_available"]) and w["state"] == "qr_required"
            if usage:
                conn = self.db.connection()
                w["usage"] = sender_usage(conn, self.rules, w["id"], w["channel"], now)
            workers.append(w)
        return workers
