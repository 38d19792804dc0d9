"""Job channels: which transport a job's rows start on, and where they go when it fails them.

The one home of the rules for `whatsapp_then_sms` (and any job channel made of several
transports): the API asks which transport rows start on and whether the job can carry an
attachment, the queue asks which jobs wait on a transport, the worker asks where a failed row
goes next. A new transport is one more entry in TRANSPORTS, and a job channel one more row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The transports a worker can run (WORKER_CHANNEL); each sends one kind of message.
TRANSPORTS = ("whatsapp", "sms")


@dataclass(frozen=True)
class JobChannel:
    """What a job's `channel` means for its rows."""

    name: str
    label: str
    first: str  # the transport every row starts on
    # error code -> transport: a row failed with that code starts again on that transport
    fallback: dict[str, str] = field(default_factory=dict)

    @property
    def transports(self) -> tuple[str, ...]:
        """Every transport the job's rows may travel on, the first one first."""
        return tuple(dict.fromkeys((self.first, *self.fallback.values())))

    @property
    def takes_attachment(self) -> bool:
        """Only WhatsApp carries a file; a job that may end on SMS still sends it there."""
        return self.first == "whatsapp"

    @property
    def uses_sms(self) -> bool:
        """Whether any row may go as SMS, so its parts are worth counting."""
        return "sms" in self.transports


JOB_CHANNELS: dict[str, JobChannel] = {
    c.name: c
    for c in (
        JobChannel("whatsapp", "WhatsApp", "whatsapp"),
        JobChannel("sms", "SMS", "sms"),
        JobChannel(
            "whatsapp_then_sms",
            "WhatsApp, then SMS",
            "whatsapp",
            fallback={"not_on_whatsapp": "sms"},
        ),
    )
}


def job_channel(name: str) -> JobChannel:
    """The rules of job channel `name`; a single transport stands for itself."""
    found = JOB_CHANNELS.get(name)
    return found if found is not None else JobChannel(name, name, name)


def fallback_transport(job_channel_name: str, error_code: str) -> str | None:
    """The transport a row failed with `error_code` moves to, or None when it just fails."""
    return job_channel(job_channel_name).fallback.get(error_code)


def job_channels_using(transport: str) -> tuple[str, ...]:
    """The job channels whose rows may wait on `transport` (to park them when it is down).

    Only the first transport parks a job whole: a WhatsApp logout parks `whatsapp_then_sms`
    jobs, but an unreachable phone does not stop their WhatsApp rows.
    """
    names = tuple(c.name for c in JOB_CHANNELS.values() if c.first == transport)
    return names or (transport,)
