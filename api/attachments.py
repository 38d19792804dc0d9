"""Attachments: checked, then stored under a generated name inside the upload folder.

The client's file name is kept only as a label; the file on disk is `<random>.<ext>` with an
allowed extension, so no name a client sends can reach outside the folder.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .payload import check_text
from .problems import invalid

ALLOWED_EXTENSIONS = {
    "jpg",
    "jpeg",
    "png",
    "gif",
    "webp",  # sent as photos
    "mp4",
    "3gp",
    "mov",  # videos
    "mp3",
    "ogg",
    "m4a",
    "aac",
    "opus",  # audio
    "pdf",
    "txt",
    "csv",
    "doc",
    "docx",
    "xls",
    "xlsx",
    "ppt",
    "pptx",
    "odt",
    "ods",
    "zip",
}


# File systems and WhatsApp both stop at 255 bytes of name; the worker hands the name on.
MAX_NAME_BYTES = 255
# Right-to-left overrides and isolates make "menu\u202efdp.exe" read as "menuexe.pdf".
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Attachment:
    original_name: str
    extension: str
    data: bytes


@dataclass(frozen=True)
class Stored:
    path: str
    original_name: str
    sha256: str


def _name_problem(name: str) -> str | None:
    """Why a file name cannot be sent on, or None. Such a name would fail every message."""
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    if any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in name):
        return "contains a line break or another control character"
    return None


def _checked(filename: str, data: bytes) -> Attachment:
    # A path ("C:\\Users\\...\\menu.pdf", "../x.pdf") keeps only its last part, so no
    # separator reaches the disk or the worker.
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    problem = _name_problem(name)
    if problem:
        raise invalid(
            "attachment",
            f"The attachment's file name {problem}; rename the file and attach it again.",
        )
    check_text("attachment.filename", name)  # lone surrogates
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in ALLOWED_EXTENSIONS:
        raise invalid(
            "attachment",
            f"Files of type {('.' + extension) if extension else 'unknown'}"
            f" cannot be attached. Allowed: {', '.join(sorted(ALLOWED_EXTENSIONS))}.",
        )
    if not data:
        raise invalid("attachment", "The attachment is empty.")
    return Attachment(original_name=name, extension=extension, data=data)


def from_json(value) -> Attachment | None:
    """`{"filename", "content_base64"}` from a JSON body, decoded and checked."""
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("filename"), str)
        or not isinstance(value.get("content_base64"), str)
    ):
        raise invalid(
            "attachment", 'attachment must be {"filename": "...", "content_base64": "..."}.'
        )
    try:
        data = base64.b64decode(value["content_base64"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid("attachment", "attachment.content_base64 is not valid base64.") from None
    return _checked(value["filename"], data)


def from_upload(upload) -> Attachment | None:
    """The `attachment` file of a multipart form, checked."""
    if upload is None or not upload.filename:
        return None
    return _checked(upload.filename, upload.read())


def store(attachment: Attachment, upload_dir: str) -> Stored:
    """Write the file under a fresh random name; returns where it went."""
    folder = Path(upload_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{secrets.token_hex(12)}.{attachment.extension}"
    # O_EXCL: never overwrite, never follow a planted link.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "wb") as f:
        f.write(attachment.data)
    return Stored(
        path=str(path),
        original_name=attachment.original_name,
        sha256=hashlib.sha256(attachment.data).hexdigest(),
    )


def discard(stored: Stored | None) -> None:
    """Remove a stored file that no job refers to."""
    if stored is not None:
        Path(stored.path).unlink(missing_ok=True)
