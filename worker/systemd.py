"""sd_notify in a few lines of standard library: a no-op outside systemd.

systemd sets NOTIFY_SOCKET for Type=notify services; we send READY, WATCHDOG, STATUS and
STOPPING datagrams to it so `systemctl status` says what the worker does.
"""

from __future__ import annotations

import socket


class Notifier:
    """Sends state lines to systemd when `socket_path` (NOTIFY_SOCKET) is set."""

    def __init__(self, socket_path: str | None):
        self.address = None
        if socket_path:
            # A leading @ names an abstract socket: its real name starts with a NUL byte.
            self.address = "\0" + socket_path[1:] if socket_path.startswith("@") else socket_path

    def notify(self, state: str) -> bool:
        """Send one datagram like 'READY=1'; False when not under systemd or it failed."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall(state.encode())
            return True
        except OSError:
            return False

    def ready(self) -> bool:
        return self.notify("READY=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")
