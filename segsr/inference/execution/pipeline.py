"""Reading the next windows and writing finished blocks beside the network, so the device does not wait on GDAL.

GDAL, numpy and torch release the GIL while they work, so one reader and one writer thread overlap real
work with the network even on a CPU. Each thread uses its own dataset handle (GDAL handles are not
thread-safe); queues are bounded, so memory stays at a few batches; an error in a thread is raised again
in the caller, and a caller that unwinds (an error, Ctrl-C, SIGTERM) stops and joins the threads before
the files they use are closed.
"""

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

Item = TypeVar('Item')
POLL_SECONDS = 0.1
_END = object()


class _Worker:
    """A daemon thread and the event that asks it to stop."""

    def __init__(self, target: Callable[[], None], name: str):
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._guarded, args=(target,), name=name, daemon=True)

    def _guarded(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as error:  # handed to the caller's thread, which raises it
            self.error = error

    def put(self, items: queue.Queue, item) -> bool:
        """Put unless asked to stop; False when stopped."""
        while not self.stop.is_set():
            try:
                items.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def join(self) -> None:
        self.stop.set()
        self.thread.join()


def prefetched(items: Iterator[Item], depth: int = 2) -> Iterator[Item]:
    """``items`` produced by a reader thread up to ``depth`` ahead of the consumer."""
    ready: queue.Queue = queue.Queue(maxsize=depth)

    def produce() -> None:
        for item in items:
            if not worker.put(ready, item):
                return
        worker.put(ready, _END)

    worker = _Worker(produce, 'segsr-reader')
    worker.thread.start()
    try:
        while True:
            try:
                item = ready.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not worker.thread.is_alive() and ready.empty():
                    break
                continue
            if item is _END:
                break
            yield item
    finally:
        worker.join()
    if worker.error is not None:
        raise worker.error


class BackgroundWriter:
    """Runs ``write(*args)`` calls in order on a writer thread; ``close`` waits for them and raises their error."""

    def __init__(self, depth: int = 4):
        self.pending: queue.Queue = queue.Queue(maxsize=depth)
        self.worker = _Worker(self._drain, 'segsr-writer')
        self.worker.thread.start()

    def _drain(self) -> None:
        while not self.worker.stop.is_set() or not self.pending.empty():
            try:
                job = self.pending.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if job is _END:
                return
            job()

    def submit(self, job: Callable[[], None]) -> None:
        while True:
            self._raise_error()
            try:
                self.pending.put(job, timeout=POLL_SECONDS)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Every submitted write done (raises the first error a write raised)."""
        self.worker.put(self.pending, _END)
        self.worker.thread.join()
        self._raise_error()

    def cancel(self) -> None:
        """Stop at once, dropping queued writes (the output is being abandoned)."""
        while True:
            try:
                self.pending.get_nowait()
            except queue.Empty:
                break
        self.worker.join()

    def _raise_error(self) -> None:
        if self.worker.error is not None:
            raise self.worker.error


class InlineWriter:
    """The same interface, writing on the caller's thread (``io_threads=False``)."""

    def submit(self, job: Callable[[], None]) -> None:
        job()

    def finish(self) -> None:
        """Nothing is pending."""

    def cancel(self) -> None:
        """Nothing is pending."""
