"""The SQLite queue shared by the API and the workers. Only this package touches SQL."""
from .errors import (DatabaseUnavailable, IdempotencyConflict, IllegalTransition, JobNotFound,
                     NothingToResend, QueueError)
from .jobs import NewJob, Recipient
from .queue import Queue
from .states import JOB_CHANNELS, JobStatus, MessageStatus, channels_of

__all__ = ["Queue", "NewJob", "Recipient", "JobStatus", "MessageStatus", "JOB_CHANNELS",
           "channels_of", "QueueError", "JobNotFound", "IllegalTransition",
           "IdempotencyConflict", "DatabaseUnavailable", "NothingToResend"]
