"""The worker daemon: `python run_worker.py` sends the queue's messages of one channel.

Signal handlers only set Events: the first SIGTERM (or Ctrl-C) lets the current message
finish and exits 0; a second one aborts between the steps of that message.

They are installed before anything slow is imported: systemd (or a person) may stop the
worker while it is still starting, and a SIGTERM then must mean "stop cleanly" too, not
Python's default of dying on the spot.
"""

from __future__ import annotations

import signal
import sys
import threading


def install_signal_handlers(stop: threading.Event, abort: threading.Event) -> None:
    """First SIGTERM/SIGINT: finish the current message, then exit. Second: abort it."""

    def handle(signum, frame):
        if stop.is_set():
            abort.set()
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(stop: threading.Event, abort: threading.Event) -> int:
    """Read the settings, open the queue and the channel, run until stopped."""
    # Imported here, after the handlers are in place: these take most of the start-up time.
    import logging

    from config import ConfigError, Settings
    from message_queue import DatabaseUnavailable, Queue, SenderInUse, SendingRules
    from utils.logs import setup_logging
    from worker.channels import make_transport
    from worker.systemd import Notifier
    from worker.worker import Worker

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    try:
        queue = Queue(settings.database, rules=SendingRules.from_settings(settings))
        transport = make_transport(settings, abort)
        worker = Worker(settings, queue, transport, stop, notifier=Notifier(settings.notify_socket))
        logging.getLogger("worker").info(
            "worker %s starting on channel %s", settings.worker_id, settings.worker_channel
        )
        return worker.run()
    except DatabaseUnavailable as exc:
        print(f"error: cannot use the database: {exc}", file=sys.stderr)
        return 3
    except SenderInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"error: channel {settings.worker_channel} is not available: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    STOP, ABORT = threading.Event(), threading.Event()
    install_signal_handlers(STOP, ABORT)
    sys.exit(main(STOP, ABORT))
