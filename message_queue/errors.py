"""Errors the queue raises to its callers; the API maps each to one HTTP status."""


class QueueError(Exception):
    """Base of every error the queue raises on purpose."""


class JobNotFound(QueueError):
    """No job has that id."""


class ConversationNotFound(QueueError):
    """No conversation has that number: nothing was sent to it and it never wrote."""


class IllegalTransition(QueueError):
    """The job is in a state from which the asked move is not allowed."""

    def __init__(self, job_id: str, status: str, move: str):
        super().__init__(f"cannot {move} job {job_id}: it is {status}")
        self.job_id, self.status, self.move = job_id, status, move


class NothingToResend(QueueError):
    """No row of the job is in the asked states without having been sent again already."""

    def __init__(self, job_id: str, statuses, sent_again_in=()):
        where = f"; they were sent again in {', '.join(sent_again_in)}" if sent_again_in else ""
        super().__init__(
            f"job {job_id} has no {' or '.join(statuses)} message left to send "
            f"again (a message is sent again only once){where}"
        )
        self.job_id, self.statuses = job_id, tuple(statuses)
        self.sent_again_in = list(sent_again_in)  # so a retried request finds its job


class IdempotencyConflict(QueueError):
    """The Idempotency-Key was used before for a different request."""


class SenderInUse(QueueError):
    """Another live process is this WORKER_ID: one name is one sender."""

    def __init__(self, worker_id: str, holder: str):
        super().__init__(
            f"WORKER_ID {worker_id!r} is in use by another running worker ({holder}); give "
            "each worker a name of its own, or stop the other one"
        )
        self.worker_id, self.holder = worker_id, holder


class DatabaseUnavailable(QueueError):
    """The database file cannot be opened or used."""
