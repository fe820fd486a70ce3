"""Parsing off the hot path: a large file read in a second process while this one writes.

An import spends about as long reading its rows (CSV, dates, lookups, the JSON copy of each row)
as the database spends storing them, one after the other in one process. `piped(produce)` runs the
generator `produce()` in a forked child process and yields here the batches it yields there, so
that on two cores the rows of the next batch are read while this process writes the last one.

The child is a copy of this process at the fork (the importer's lookups, caches and settings, all
read-only there) and must not use the database: its connections are made to refuse (a reader that
touched one would see the database without this run's writes). What it reports (`report.error`,
`report.count`, `report.warning`, progress) is recorded and replayed here, in order, with the batch
it came with; an exception ends the run here as it would have (FileFormatError included). The pipe
holds a few batches: a child ahead of the writer waits, so memory stays bounded. The child ends
with os._exit (no atexit handlers, no finalisers: the connection it inherited is left to this
process). Where os.fork does not exist (Windows), or with ENABLED set to False, `produce()` runs
here, as before: the same rows in the same order.
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from django.db import connections

__all__ = ["ENABLED", "Recorder", "child_peak_rss_kib", "drain", "piped"]

B = TypeVar("B")
R = TypeVar("R")
ENABLED = hasattr(os, "fork")
_peaks: list[int] = []  # peak RSS (KiB) of each reading process this process has run
Call = tuple[str, tuple[Any, ...], dict[str, Any]]


class Recorder:
    """Stands in for a report in the child: every method called on it is recorded, to be called on
    the real report by the parent (`replay`)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))

        return record

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls


PIPE_BYTES = 1 << 20  # the pipe's buffer where the system allows it (Linux: pipe-max-size, 1 MiB)


def _widen(fd: int) -> None:
    """Linux: a 1 MiB pipe buffer instead of 64 KiB (a batch of 2,000 rows is 0.2–0.5 MB)."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError):
        pass  # another system, or a lower limit: the default buffer works, with less overlap


def drain(batches: Generator[B, None, R], handle: Callable[[B], None]) -> R:
    """handle(batch) for each batch of `batches` (piped's), then what its reader returned."""
    while True:
        try:
            batch = next(batches)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        handle(batch)


def child_peak_rss_kib() -> int:
    """The largest peak RSS (KiB, Linux) of the reading processes run so far (0: none). It counts
    the pages a child shares with this process (copied at the fork, never written)."""
    return max(_peaks, default=0)


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("a reading process (tikting.imports.piped) may not use the database")


def piped(
    produce: Callable[[], Generator[B, None, R]],
    *,
    swap: Callable[[Recorder], None],
    replay: Callable[[list[Call]], None],
) -> Generator[B, None, R]:
    """The batches `produce()` yields, read in a child process; returns what it returns.

    `swap(recorder)` runs in the child before `produce()`: it points the importer's report and
    progress at the recorder. `replay(calls)` runs here, before each batch is yielded and at the
    end, with what the child recorded meanwhile."""
    if not ENABLED:
        return (yield from produce())
    reader, writer = os.pipe()
    _widen(writer)
    pid = os.fork()
    if pid == 0:  # the child: read, send, exit
        code = 1
        try:
            os.close(reader)
            _child(produce, swap, writer)
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    try:
        with os.fdopen(reader, "rb", buffering=PIPE_BYTES) as stream:
            while True:
                head = stream.read(8)
                size = int.from_bytes(head, "little") if len(head) == 8 else -1
                body = stream.read(size) if size >= 0 else b""
                if len(body) != size or size < 0:
                    raise RuntimeError("the reading process ended before the end of its file")
                # our own child's pickle, through a pipe only it and we hold
                kind, payload, calls = pickle.loads(body)  # noqa: S301
                replay(calls)
                if kind == "batch":
                    yield payload
                elif kind == "end":
                    value, peak = payload
                    _peaks.append(peak)
                    return value  # type: ignore[no-any-return]
                else:  # "raise": the child's exception, raised here
                    raise payload
    finally:
        # The child writes to a closed pipe (if it was still reading) and ends; reaped here.
        os.waitpid(pid, 0)


def _child(
    produce: Callable[[], Generator[Any, None, Any]], swap: Callable[[Recorder], None], fd: int
) -> None:
    for connection in connections.all(initialized_only=True):
        for name in ("cursor", "chunked_cursor", "ensure_connection"):
            setattr(connection, name, _refuse)
    recorder = Recorder()
    swap(recorder)
    with os.fdopen(fd, "wb", buffering=0) as stream:

        def send(kind: str, payload: Any) -> None:
            # One write per batch, its length first: the pipe holds a batch or two, so the reader
            # goes on with the next one while this process's last one is being written.
            body = pickle.dumps((kind, payload, recorder.take()), protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(len(body).to_bytes(8, "little") + body)
            while view:
                view = view[stream.write(view) or 0 :]

        try:
            batches = produce()
            while True:
                try:
                    batch = next(batches)
                except StopIteration as stop:
                    import resource  # POSIX, as fork is

                    send("end", (stop.value, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
                    return
                send("batch", batch)
        except BrokenPipeError:
            return  # the parent stopped reading (its own error): nothing to tell it
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the parent
            try:
                pickle.dumps(exc)
            except Exception:  # noqa: BLE001 - an exception that cannot travel: its text does
                exc = RuntimeError("".join(traceback.format_exception(exc)))
            send("raise", exc)
