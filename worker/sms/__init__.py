"""The SMS channel: an Android phone running SMS Gateway for Android.

`gateway` speaks the phone's REST API; `transport` puts it behind the worker's channel
interface.
"""

from .transport import SmsTransport, gateway_id

__all__ = ["SmsTransport", "gateway_id"]
