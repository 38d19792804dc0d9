"""Turn uploaded bytes into text: guess the encoding, refuse binary files, find the delimiter.

Nothing here knows about contacts; a file that is not text raises NotTextError, whose message
is meant for the uploader.
"""

import codecs
import csv
import re

NEWLINES = re.compile(r"\r\n|\r|\n")
# C0 control characters other than tab and line breaks: SQLite's C API and WhatsApp both
# stop at a NUL, and the others show as boxes or vanish on the phone. A spreadsheet export
# holds them only by accident (a stray NUL in UTF-16, a ^Z at the end), so they are dropped.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]+")
_DELIMITERS = ",;\t|"
# csv.Sniffer's quote regex is quadratic in its sample: 16 KB of ',"a' took a second of CPU.
# A few KB of lines say as much about the delimiter.
_SNIFF_CHARS = 4096
_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "an Excel .xlsx or other ZIP file",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls or Word file",
    b"\x1f\x8b": "a GZIP archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"RIFF": "a media file",
    b"ID3": "an MP3 file",
    b"\x7fELF": "a program",
    b"{\\rtf": "an RTF document",
}
_NOT_TEXT = "This does not look like a text/CSV file ({})."


class NotTextError(ValueError):
    """The bytes are a binary file rather than text; the message says why, for the user."""


def looks_like(data: bytes) -> str | None:
    """Name the kind of binary file ``data`` starts like, if it is a known one."""
    return next((what for magic, what in _SIGNATURES.items() if data.startswith(magic)), None)


def decode_text(data: bytes) -> str:
    """Decode a text upload: UTF-8 (BOM or not), UTF-16 (BOM or not), else cp1252."""
    what = looks_like(data)
    if what:
        raise NotTextError(_NOT_TEXT.format(f"it looks like {what}"))
    utf16 = utf16_without_bom(data[:4096])
    if data.startswith(codecs.BOM_UTF8):
        text = data[3:].decode("utf-8", errors="replace")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="replace")
    elif utf16:
        text = data.decode(utf16, errors="replace")
    elif b"\x00" in data:
        raise NotTextError(_NOT_TEXT.format("it contains binary data"))
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # Excel on Windows saves "CSV" in the ANSI code page; cp1252 covers Western
            # Europe and the Americas, where "José" is the usual casualty.
            text = data.decode("cp1252", errors="replace")
    sample = text[:8192]
    controls = sum(ord(ch) < 32 and ch not in "\t\n\r\x0b\x0c" for ch in sample)
    if controls > max(1, len(sample) // 100):  # one stray ^Z or ^A is not a binary file
        raise NotTextError(_NOT_TEXT.format("it contains binary data"))
    return strip_controls(text)


def strip_controls(text: str) -> str:
    """``text`` without NUL and the other control characters a message cannot carry."""
    return _CONTROLS.sub("", text)


def _lines(text: str, size: int) -> str:
    """The first `size` characters of `text`, cut after a line end: a cut line would
    mislead the Sniffer."""
    sample = text[:size]
    if "\n" in sample or "\r" in sample:
        sample = sample[: max(sample.rfind("\n"), sample.rfind("\r")) + 1]
    return sample


def utf16_without_bom(sample: bytes) -> str | None:
    """Guess BOM-less UTF-16 from where the zero bytes of ASCII characters fall."""
    even, odd = sample[0::2], sample[1::2]
    if len(odd) >= 2 and odd.count(0) >= 0.3 * len(odd) and even.count(0) <= 0.05 * len(even):
        return "utf-16-le"
    if len(odd) >= 2 and even.count(0) >= 0.3 * len(even) and odd.count(0) <= 0.05 * len(odd):
        return "utf-16-be"
    return None


def detect_delimiter(text: str) -> str:
    """csv.Sniffer's delimiter if the header line has it, else the header's commonest one."""
    sample = _lines(text, 16384)
    header = next((line for line in NEWLINES.split(sample) if line.strip()), "")
    # Fields the header splits into with each delimiter, quotes respected.
    counts = {d: len(next(csv.reader([header], delimiter=d), [])) - 1 for d in _DELIMITERS}
    try:
        sniffer = csv.Sniffer()
        sniffed = sniffer.sniff(_lines(sample, _SNIFF_CHARS), delimiters=_DELIMITERS).delimiter
        if counts.get(sniffed, 0) > 0:
            return sniffed
    except csv.Error:
        pass  # the Sniffer gives up on one-column files; counting still works
    best = max(_DELIMITERS, key=counts.__getitem__)  # a tie goes to the commoner, earlier one
    return best if counts[best] > 0 else ","
