"""Locators as data: each logical element is an ordered list of alternatives.

WhatsApp Web changes its markup several times a year; when the first alternative stops
matching, the next one still does, and the self-check names elements for which none does.
"""
from __future__ import annotations

import json
from pathlib import Path

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

REQUIRED = ("qr_canvas", "app_shell", "compose_box", "send_button", "attach_button",
            "file_input_media", "file_input_document", "caption_box", "media_send_button",
            "invalid_modal", "modal_button", "use_here_button", "outgoing_bubble",
            "bubble_text", "tick_done", "tick_pending", "tick_error")


class LocatorsError(ValueError):
    """The selectors file is missing, not JSON, or lacks an element."""


class Locators:
    """Finds logical page elements by trying their alternatives in order."""

    def __init__(self, table: dict[str, list[str]]):
        missing = [name for name in REQUIRED if not table.get(name)]
        if missing:
            raise LocatorsError(f"selectors file lacks: {', '.join(missing)}")
        self.table = table

    @classmethod
    def load(cls, path: str | Path) -> "Locators":
        """Read a selectors JSON file (keys starting with `_` are comments)."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LocatorsError(f"cannot read SELECTORS_FILE {str(path)!r}: {exc}") from None
        if not isinstance(raw, dict):
            raise LocatorsError(f"SELECTORS_FILE {str(path)!r} must hold a JSON object")
        table = {}
        for name, alternatives in raw.items():
            if name.startswith("_"):
                continue
            if isinstance(alternatives, str):
                alternatives = [alternatives]
            if not isinstance(alternatives, list) or not all(isinstance(a, str) for a in alternatives):
                raise LocatorsError(f"selector {name!r} must be a list of strings")
            table[name] = alternatives
        return cls(table)

    def find_all(self, root, name: str) -> list:
        """Elements of the first alternative that matches anything under `root`."""
        for alternative in self.table[name]:
            if alternative.startswith("xpath:"):
                found = root.find_elements(By.XPATH, alternative[len("xpath:"):])
            else:
                found = root.find_elements(By.CSS_SELECTOR, alternative)
            if found:
                return found
        return []

    def find(self, root, name: str):
        """The first element of the first matching alternative, or None."""
        found = self.find_all(root, name)
        return found[0] if found else None

    def first_present(self, root, names) -> tuple[str, object] | None:
        """Which of `names` is on the page now (checked in order), with its element."""
        for name in names:
            element = self.find(root, name)
            if element is not None:
                return name, element
        return None

    def missing(self, root, names) -> list[str]:
        """The names for which no alternative matches: the start-up self-check."""
        try:
            return [name for name in names if self.find(root, name) is None]
        except WebDriverException:
            return list(names)
