"""A local WhatsApp Web stand-in for real-browser tests.

``StandinServer(**options)`` serves, on http://127.0.0.1:<free port>, pages built like the
real site (see shared/reference/whatsapp-web-dom.md), so a Selenium sender written against
the real locators runs on it unchanged:

- QR landing: ``div[data-ref] > canvas[aria-label='Scan this QR code to link a device!']``
- app shell: ``#side``, ``#pane-side``, ``div[aria-label='Chat list']``,
  ``span[data-icon='search']``
- chat (``/send?phone=&text=``): ``#main``; compose box ``#main footer
  div.lexical-rich-text-input > div[contenteditable='true'][role='textbox'][data-tab='10']``
  with ``aria-placeholder='Type a message'``; send ``button[aria-label='Send'] >
  span[data-icon='wds-ic-send-filled']`` (only while the box has text); attach
  ``div[aria-label='Attach'] > span[data-icon='plus-rounded']``
- attach menu: ``input[type='file'][accept='image/*,video/mp4,video/3gpp,video/quicktime']``
  and ``input[type='file'][accept='*']`` (hidden, as on the real site)
- media preview: ``div[aria-label='Add a caption'][contenteditable='true']
  [data-lexical-editor='true']`` and ``div[role='button'][aria-label='Send'] >
  span[data-icon='wds-ic-send-filled']``
- bubbles: ``div.message-out`` with ``span.selectable-text`` and a tick
  ``span[data-icon='msg-time']`` turning into ``span[data-icon='msg-check']``
- modals: ``div[data-animate-modal-popup='true']`` with a last ``div[role='button']``
  ("OK" for an invalid number, "Use here" for a session conflict)
- incoming (``StandinServer.incoming(phone, text, media=, caption=, name=, at=)``): chat rows
  ``div[role='listitem']`` (first ``span[title]`` the name, second the preview), most recent
  first, with ``span[aria-label='N unread message(s)']``. The list is virtualised: at most 20
  rows exist, those in view of ``#pane-side`` (scrolling it draws others). Above it, filter
  chips ``[role='tablist'] button#all-filter`` / ``#unread-filter`` ("All", "Unread", ...;
  ``aria-selected='true'`` on the chosen one; option ``chat_filters=False`` leaves them out,
  as older builds). ``read_on_phone(phone)`` clears a badge as the phone would. Bubbles
  ``div[data-id='false_<digits>@c.us_<id>'][role='row'] > div.message-in`` with
  ``div.copyable-text[data-pre-plain-text]`` and ``span.selectable-text`` (emoji as
  ``img.emoji[alt]``). Opening a chat reads it; a
  message to the chat a live page shows is read on arrival (chatbook.py).
"""

from .app import StandinState, create_app
from .server import StandinServer

__all__ = ["StandinServer", "StandinState", "create_app"]
