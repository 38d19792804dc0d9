"""Signed-in /app sessions: created at sign-in, ended by sign-out, idleness, age or a new key.

Rows are keyed by the sha256 of the random id the browser holds, so reading the database (or
a backup of it) gives no usable cookie. When a session has ended is decided here only.
"""

from __future__ import annotations

from .store import Store

# last_seen_at is rewritten at most this often: the page polls every few seconds, and a
# write per poll would make every GET a write transaction competing with the workers.
TOUCH_EVERY = 60.0


class SessionStore(Store):
    """Session rows; mixed into `Queue`, which provides `db` and `clock`."""

    def create_session(self, id_hash: str, key_mac: str, csrf: str) -> None:
        """Record a new signed-in session (at sign-in)."""
        now = self.clock()
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO sessions (id_hash, key_mac, csrf, created_at, last_seen_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (id_hash, key_mac, csrf, now, now),
            )

    def touch_session(
        self, id_hash: str, key_mac: str, idle_timeout: float, max_age: float
    ) -> dict | None:
        """The live session `id_hash` (its row as a dict), or None when it has ended.

        A session found ended (idle, too old, or bound to another API key) is deleted on the
        way; a live one has its last_seen_at moved on when it is older than TOUCH_EVERY.
        """
        now = self.clock()
        row = (
            self.db.connection()
            .execute(
                "SELECT id_hash, key_mac, csrf, created_at, last_seen_at FROM sessions"
                " WHERE id_hash = ?",
                (id_hash,),
            )
            .fetchone()
        )
        if row is None:
            return None
        session = dict(row)
        if session["key_mac"] != key_mac or _expired(session, now, idle_timeout, max_age):
            self.end_session(id_hash)
            return None
        # With a short idle timeout (tests, or a strict setting), touch often enough that a
        # busy page is never taken for an idle one.
        if now - session["last_seen_at"] > min(TOUCH_EVERY, idle_timeout / 10):
            with self.db.write() as conn:
                conn.execute(
                    "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ? AND last_seen_at < ?",
                    (now, id_hash, now),
                )
            session["last_seen_at"] = now
        return session

    def end_session(self, id_hash: str) -> None:
        """End one session (sign-out): its cookie is worth nothing from now on."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))

    def purge_expired_sessions(self, key_mac: str, idle_timeout: float, max_age: float) -> int:
        """Delete every ended session (idle, too old, or of another API key); how many."""
        now = self.clock()
        with self.db.write() as conn:
            cursor = conn.execute(
                "DELETE FROM sessions WHERE key_mac <> ? OR last_seen_at <= ? OR created_at <= ?",
                (key_mac, now - idle_timeout, now - max_age),
            )
        return cursor.rowcount


def _expired(session: dict, now: float, idle_timeout: float, max_age: float) -> bool:
    """The one rule for when a session has ended by time (purge's SQL says the same)."""
    return now - session["last_seen_at"] >= idle_timeout or now - session["created_at"] >= max_age
