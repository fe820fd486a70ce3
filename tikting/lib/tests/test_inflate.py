"""archives.inflate: zlib and gzip bodies unpacked within a size and a ratio limit (zlib bombs)."""

from __future__ import annotations

import gzip
import zlib

import pytest

from tikting.lib.archives import RATIO_FLOOR, ArchiveRefused, inflate

MAX_BYTES, MAX_RATIO = 10 << 20, 100.0


@pytest.mark.parametrize("pack", [zlib.compress, gzip.compress])
def test_zlib_and_gzip_unpack(pack):
    data = b"".join(i.to_bytes(4, "big") for i in range(500_000))  # 2 MB, over the ratio floor
    assert inflate(pack(data), max_bytes=MAX_BYTES, max_ratio=MAX_RATIO) == data


def test_a_bomb_is_refused_past_the_ratio_after_unpacking_little():
    bomb = zlib.compress(b"\0" * (200 << 20), 9)  # 200 MiB in about 200 KB
    with pytest.raises(ArchiveRefused, match="compressed more than 100 to 1"):
        inflate(bomb, max_bytes=1 << 30, max_ratio=100)


def test_output_past_the_size_limit_is_refused():
    with pytest.raises(ArchiveRefused, match="unpacks to more than 1,000 bytes"):
        inflate(zlib.compress(b"x" * 5000), max_bytes=1000, max_ratio=1e9)


def test_small_files_are_never_refused_for_their_ratio():
    blanks = b" " * RATIO_FLOOR  # 1 MiB of blanks compresses about 1000 to 1
    assert inflate(zlib.compress(blanks, 9), max_bytes=MAX_BYTES, max_ratio=MAX_RATIO) == blanks


@pytest.mark.parametrize("data", [zlib.compress(b"abc" * 1000)[:-5], b"not compressed", b""])
def test_a_truncated_or_foreign_stream_is_a_zlib_error(data):
    with pytest.raises(zlib.error):
        inflate(data, max_bytes=MAX_BYTES, max_ratio=MAX_RATIO)
