"""Where each channel's transport lives: the one registration line a new channel adds.

Modules are imported only when their channel is asked for, so an SMS worker never loads
Selenium and a WhatsApp worker never loads the gateway client.
"""

from __future__ import annotations

import importlib
import threading

from .transport import Transport

# channel name -> "module:class"; the class is built as Class(settings, abort).
REGISTRY = {
    "whatsapp": "worker.whatsapp:WhatsAppTransport",
    "sms": "worker.sms:SmsTransport",
}


def make_transport(settings, abort: threading.Event) -> Transport:
    """The transport of WORKER_CHANNEL, opened lazily by its first session check."""
    module_name, _, class_name = REGISTRY[settings.worker_channel].partition(":")
    transport_class = getattr(importlib.import_module(module_name), class_name)
    return transport_class(settings, abort)
