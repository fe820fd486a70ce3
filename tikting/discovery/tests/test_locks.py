"""One run per source at a time: the lock is refused while another session holds it."""

from __future__ import annotations

import pytest

from tikting.discovery.locks import SourceBusy, source_lock

from .samples import held_elsewhere

pytestmark = pytest.mark.django_db


def test_a_source_held_elsewhere_is_busy_and_free_again_after():
    with held_elsewhere("dc1-scan"):
        busy = pytest.raises(SourceBusy, match="Another discovery run of source 'dc1-scan' is in progress")
        with busy, source_lock("dc1-scan"):
            pass
        with source_lock("dc2-scan"):  # another source is not held up
            pass
    with source_lock("dc1-scan"):  # released with its holder
        pass
