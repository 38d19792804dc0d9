"""The SQLite queue shared by the API and the workers. Only this package touches SQL."""

from .channels import JOB_CHANNELS, TRANSPORTS, JobChannel, fallback_transport, job_channel
from .errors import (
    ConversationNotFound,
    DatabaseUnavailable,
    IdempotencyConflict,
    IllegalTransition,
    JobNotFound,
    NothingToResend,
    QueueError,
    SenderInUse,
)
from .jobs import NewJob, Recipient
from .queue import Queue
from .rules import SendingRules
from .states import JobStatus, MessageStatus

__all__ = [
    "Queue",
    "SendingRules",
    "NewJob",
    "Recipient",
    "JobStatus",
    "MessageStatus",
    "JOB_CHANNELS",
    "TRANSPORTS",
    "JobChannel",
    "job_channel",
    "fallback_transport",
    "QueueError",
    "JobNotFound",
    "ConversationNotFound",
    "IllegalTransition",
    "IdempotencyConflict",
    "DatabaseUnavailable",
    "NothingToResend",
    "SenderInUse",
]
