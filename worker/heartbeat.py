"""The worker's heartbeat: alive, in which state, on which job, and why it waits.

/session shows it, and other workers' crash recovery reads its age; so it is written when
the state changes and every few seconds otherwise, never on every turn of the loop.
"""

from __future__ import annotations

import os
import secrets
import socket

HEARTBEAT_EVERY = 5.0  # seconds between two writes of an unchanged state


def this_instance() -> str:
    """This process, as the queue's `workers.instance` names it: host, pid, and a random
    part, so a new process with a recycled pid is still another instance."""
    return f"{socket.gethostname()} {os.getpid()} {secrets.token_hex(4)}"


def gone(holder: str) -> bool:
    """Whether the process `holder` names is certainly gone: on this machine, and its pid is
    ours (an earlier life of this process) or no longer runs. Elsewhere, nobody can tell:
    its heartbeat must go stale first."""
    host, pid, _ = (holder.split(" ", 2) + ["", ""])[:3]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


class Heartbeat:
    """Writes this worker's state to the queue, skipping repeats within HEARTBEAT_EVERY."""

    def __init__(self, queue, worker_id: str, channel: str, clock):
        self.queue, self.worker_id, self.channel, self.clock = queue, worker_id, channel, clock
        self.instance = this_instance()
        # (state, job, detail, when) of the last write; run() starts with `starting`.
        self.last: tuple[str, str | None, str | None, float] = (
            "starting",
            None,
            None,
            float("-inf"),
        )

    @property
    def state(self) -> str:
        """The state last written."""
        return self.last[0]

    def write(
        self, state: str, job_id: str | None = None, detail: str | None = None, force: bool = False
    ) -> None:
        """Say we are alive in `state`; an unchanged one only every few seconds."""
        now = self.clock()
        unchanged = self.last[:3] == (state, job_id, detail)
        if unchanged and not force and now - self.last[3] < HEARTBEAT_EVERY:
            return
        self.queue.heartbeat(
            self.worker_id,
            self.channel,
            state,
            job_id,
            detail,
            instance=self.instance,
            may_take_over=gone,
        )
        self.last = (state, job_id, detail, now)

    def again(self) -> None:
        """Repeat the last state: a long pause must not make the worker look dead."""
        state, job_id, detail, _ = self.last
        self.write(state, job_id, detail)

    def stopped(self) -> None:
        """The last word: the worker is gone on purpose, its rows are not a crash's."""
        self.queue.heartbeat(
            self.worker_id, self.channel, "stopped", instance=self.instance, may_take_over=gone
        )
