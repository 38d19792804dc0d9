"""The worker daemon: `python run_worker.py` sends the queue's messages of one channel.

Signal handlers only set Events: the first SIGTERM (or Ctrl-C) lets the current message
finish and exits 0; a second one aborts between the steps of that message.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading

from config import ConfigError, Settings
from message_queue import DatabaseUnavailable, Queue
from utils.logs import setup_logging
from worker.systemd import Notifier
from worker.worker import Worker

log = logging.getLogger("worker")


def make_transport(settings: Settings, abort: threading.Event):
    """The transport of WORKER_CHANNEL."""
    if settings.worker_channel == "whatsapp":
        from worker.whatsapp import WhatsAppTransport
        return WhatsAppTransport(settings, abort)
    from worker.sms import SmsTransport
    return SmsTransport(settings, abort)


def install_signal_handlers(stop: threading.Event, abort: threading.Event) -> None:
    """First SIGTERM/SIGINT: finish the current message, then exit. Second: abort it."""
    def handle(signum, frame):
        if stop.is_set():
            abort.set()
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    stop, abort = threading.Event(), threading.Event()
    install_signal_handlers(stop, abort)
    try:
        queue = Queue(settings.database_path)
        transport = make_transport(settings, abort)
        worker = Worker(settings, queue, transport, stop, notifier=Notifier(settings.notify_socket))
        log.info("worker %s starting on channel %s", settings.worker_id, settings.worker_channel)
        return worker.run()
    except DatabaseUnavailable as exc:
        print(f"error: cannot use the database: {exc}", file=sys.stderr)
        return 3
    except ImportError as exc:
        print(f"error: channel {settings.worker_channel} is not available: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
