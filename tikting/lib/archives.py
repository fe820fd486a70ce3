"""Reading members of zip archives within limits (zip bombs).

A small zip can unpack to gigabytes (a 10 MB file holding a 3 GB member). Before a member is
opened, its declared size and its compression ratio are checked against the limits. The declared
size is also a hard stop: Python's zipfile never unpacks more than a member declares (a member
that holds more fails its CRC check with BadZipFile), so an archive cannot lie its way past them.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import IO

__all__ = ["ArchiveRefused", "ZipLimits", "open_member"]

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
