"""Uploaded files: a safe name to keep and show, and the real type of the content (no Django).

`safe_name` keeps what a person would recognise of a file name and nothing a file system or a
header could misread: no folders (`../`, `C:\\`), no control or format characters, no leading dots,
at most `limit` characters with the extension kept. `sniff` reads the first bytes of a file and
says what it is, so a type allow-list is checked on the content, not only on the extension.
"""

from __future__ import annotations

import unicodedata

DEFAULT_NAME = "file"
NAME_LIMIT = 150

# Magic numbers of the binary types worth attaching (the first bytes of the file).
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),  # also docx, xlsx, pptx, odt (zip containers)
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # legacy doc, xls, msg
)
TEXT = "text/plain"


def safe_name(name: str, *, limit: int = NAME_LIMIT) -> str:
    """The last part of `name` (either slash), without control or format characters, trimmed of
    spaces and leading dots, at most `limit` characters (the extension kept); never empty."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(" " if ch in "\t\n\r" else ch for ch in text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"})
    text = " ".join(text.split()).lstrip(". ").rstrip(" .")
    if not text:
        return DEFAULT_NAME
    if len(text) > limit:
        stem, dot, ext = text.rpartition(".")
        if dot and stem and 0 < len(ext) <= 10:
            text = stem[: limit - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            text = text[:limit].rstrip(" .")
    return text or DEFAULT_NAME


def extension(name: str) -> str:
    """The lower-case extension without its dot ('' if none)."""
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def sniff(head: bytes) -> str:
    """What the first bytes (a few KiB) say the file is: a type of SIGNATURES, text/plain for
    UTF-8 text without NUL characters, or '' for anything else (unknown binary)."""
    for magic, mime in SIGNATURES:
        if head.startswith(magic):
            return mime
    if b"\x00" in head:
        return ""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The cut may fall inside a character: text if only the last 3 bytes fail.
        if exc.start < len(head) - 3:
            return ""
    return TEXT
