"""A job's messages as /jobs/<id>/messages pages them and the CSV export streams them."""

from __future__ import annotations

from .errors import JobNotFound
from .store import Store, like_pattern


class ListingStore(Store):
    """Reading a job's rows back; mixed into `Queue`."""

    def list_messages(
        self,
        job_id: str,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        search: str | None = None,
    ) -> tuple[list[dict], int]:
        """A page of a job's messages in queue order, and how many match in all."""
        where, params = "job_id = ?", [job_id]
        if status:
            where += " AND status = ?"
            params.append(status)
        if search:
            where += " AND (phone LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')"
            like = like_pattern(search)
            params += [like, like]
        with self.db.read() as conn:
            _must_exist(conn, job_id)
            total = conn.execute(f"SELECT count(*) FROM messages WHERE {where}", params).fetchone()[
                0
            ]
            rows = conn.execute(
                f"SELECT * FROM messages WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [dict(r) for r in rows], total

    def iter_messages(self, job_id: str, batch: int = 2_000):
        """Every message of a job in queue order, read in batches (for exports)."""
        with self.db.read() as conn:
            _must_exist(conn, job_id)
        last = 0
        while True:
            rows = (
                self.db.connection()
                .execute(
                    "SELECT * FROM messages WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?",
                    (job_id, last, batch),
                )
                .fetchall()
            )
            if not rows:
                return
            yield from (dict(r) for r in rows)
            last = rows[-1]["id"]


def _must_exist(conn, job_id: str) -> None:
    if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
        raise JobNotFound(job_id)
