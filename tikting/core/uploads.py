"""Upload handling: the disk an upload may take is bounded by TIKTING_MAX_UPLOAD_BYTES.

Django's DATA_UPLOAD_MAX_MEMORY_SIZE only bounds the non-file part of a request, and the file
parts are parsed (written to a temporary file) before a view can look at their size. This handler
stops writing once a request's files exceed TIKTING_MAX_UPLOAD_BYTES but keeps counting, so the
uploaded file still reports its real `size` and the import endpoint answers 413 as before, without
the rest of the body ever reaching the disk.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler


class BoundedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.received = 0  # bytes of every file of this request

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received <= settings.TIKTING_MAX_UPLOAD_BYTES:
            self.file.write(raw_data)
        # Over the limit: the chunk is dropped; file_complete() still gets the full size.
        return None
