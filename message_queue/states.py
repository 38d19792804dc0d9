"""The job and message states of the contract, and which job moves are legal."""

# A worker silent this long shows as `disconnected` (the contract's 60 s), and cannot send.
DISCONNECTED_AFTER = 60.0


class JobStatus:
    SCHEDULED = "scheduled"
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_FOR_LOGIN = "waiting_for_login"
    WAITING_FOR_GATEWAY = "waiting_for_gateway"
    COMPLETED = "completed"
    STOPPED = "stopped"

    ACTIVE = (SCHEDULED, PENDING, RUNNING, PAUSED, WAITING_FOR_LOGIN, WAITING_FOR_GATEWAY)
    FINAL = (COMPLETED, STOPPED)
    WAITING = (WAITING_FOR_LOGIN, WAITING_FOR_GATEWAY)
    # Only these hand out messages to workers.
    SENDABLE = (PENDING, RUNNING)


class MessageStatus:
    PENDING = "pending"
    RETRYING = "retrying"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    ALL = (PENDING, RETRYING, SENDING, SENT, DELIVERED, FAILED, CANCELLED, UNKNOWN)
    OPEN = (PENDING, RETRYING, SENDING)
    FINISHED = (SENT, DELIVERED, FAILED, CANCELLED, UNKNOWN)
    WAITING = (PENDING, RETRYING)
    # Finished without arriving for sure: a person may send these again, as a new job.
    RESENDABLE = (FAILED, UNKNOWN, CANCELLED)


# What a person may ask of a job, from which states. Automatic moves (first claim, waiting for
# login or the gateway, completion) are made by the queue itself, not through this table.
USER_MOVES = {
    "pause": (JobStatus.PENDING, JobStatus.RUNNING, *JobStatus.WAITING),
    "resume": (JobStatus.PAUSED,),
    "stop": JobStatus.ACTIVE,
    "start": (JobStatus.SCHEDULED,),
}
