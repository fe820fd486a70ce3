"""Reading members of zip archives, and zlib/gzip bodies, within limits (zip and zlib bombs).

A small zip can unpack to gigabytes (a 10 MB file holding a 3 GB member). Before a member is
opened, its declared size and its compression ratio are checked against the limits. The declared
size is also a hard stop: Python's zipfile never unpacks more than a member declares (a member
that holds more fails its CRC check with BadZipFile), so an archive cannot lie its way past them.

A zlib or gzip stream declares nothing: `inflate` unpacks it in bounded steps and stops as soon as
the output passes the size limit or the ratio limit, so a bomb never unpacks further than that.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

__all__ = ["ArchiveRefused", "ZipLimits", "inflate", "open_member"]

# Members this small are never refused for their ratio: a short file of blanks compresses well.
RATIO_FLOOR = 1 << 20


class ArchiveRefused(ValueError):
    """An archive member is over a limit: reading it is refused."""


@dataclass(frozen=True)
class ZipLimits:
    max_bytes: int  # uncompressed size of one member
    max_ratio: float  # uncompressed size / compressed size of one member

    def check(self, info: zipfile.ZipInfo, archive_name: str = "") -> None:
        """Raise ArchiveRefused when the member's declared size or ratio is over the limits."""
        name = f"{archive_name}:{info.filename}" if archive_name else info.filename
        if info.file_size > self.max_bytes:
            raise ArchiveRefused(
                f"{name} unpacks to {info.file_size:,} bytes, over the limit of {self.max_bytes:,} "
                "(TIKTING_IMPORT_MAX_UNPACKED_BYTES): refused as a possible zip bomb."
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > self.max_ratio:
            raise ArchiveRefused(
                f"{name} is compressed {ratio:,.0f} to 1, over the limit of {self.max_ratio:,.0f} to 1 "
                "(TIKTING_IMPORT_MAX_ZIP_RATIO): refused as a possible zip bomb."
            )


def open_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits, archive_name: str = ""
) -> IO[bytes]:
    """The member's bytes, once `limits.check` has passed (else ArchiveRefused)."""
    limits.check(info, archive_name)
    return archive.open(info)


# zlib.decompressobj's window bits that accept a zlib (RFC 1950) or a gzip (RFC 1952) header.
ZLIB_OR_GZIP = 32 + zlib.MAX_WBITS
_STEP = 64 * 1024


def inflate(data: bytes, *, max_bytes: int, max_ratio: float, what: str = "The body") -> bytes:
    """`data` (zlib or gzip) unpacked; ArchiveRefused once the output would pass `max_bytes`, or
    (past RATIO_FLOOR) `max_ratio` times the compressed size; zlib.error when it is not a valid
    stream (truncated, bad header or checksum). Never unpacks more than `max_bytes` + 64 KiB."""
    inflater = zlib.decompressobj(ZLIB_OR_GZIP)
    chunks: list[bytes] = []
    size = 0
    pending = data
    while True:
        chunk = inflater.decompress(pending, _STEP)
        size += len(chunk)
        if size > max_bytes:
            raise ArchiveRefused(
                f"{what} unpacks to more than {max_bytes:,} bytes: refused as a possible zlib bomb."
            )
        if size > RATIO_FLOOR and size / max(len(data), 1) > max_ratio:
            raise ArchiveRefused(
                f"{what} is compressed more than {max_ratio:,.0f} to 1: refused as a possible zlib bomb."
            )
        chunks.append(chunk)
        pending = inflater.unconsumed_tail
        if inflater.eof:
            break
        if not chunk and not pending:
            raise zlib.error("incomplete or truncated stream")
    return b"".join(chunks)
