"""The WhatsApp channel: WhatsApp Web in Chromium, driven through Selenium.

`browser` starts and ends Chromium, `locators` finds the page's elements from
`worker/selectors.json`, `session` keeps one logged-in browser, `sender` works one chat, and
`transport` puts them behind the worker's channel interface.
"""

from .transport import WhatsAppTransport

__all__ = ["WhatsAppTransport"]
