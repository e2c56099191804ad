"""A sink of the acquisition engine with its own bounded queue and thread."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from labctl.blocks import PhotonBlock
from labctl.interfaces import Sink
from labctl.run import RunSummary

log = logging.getLogger("labctl.acquisition.engine")

_END = object()  # end-of-run marker in sink queues
_IDLE_S = 0.05  # a sink thread with no block for this long lets its sink flush on schedule


class SinkRunner:
    """A sink with its own bounded queue and thread."""

    def __init__(self, sink: Sink, max_blocks: int, on_error: Any) -> None:
        self.sink = sink
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=max_blocks)
        self.error: BaseException | None = None
        self.photons_taken = 0
        self._on_error = on_error
        self.thread = threading.Thread(target=self._run, name=f"labctl-sink-{sink.name}", daemon=True)

    def offer(self, block: PhotonBlock) -> bool:
        """Queue a block without waiting; False if the queue is full (the caller records a loss)."""
        try:
            self.queue.put_nowait(block)
        except queue.Full:
            return False
        self.photons_taken += len(block)
        return True

    def finish(self, summary_box: list[RunSummary]) -> None:
        self.queue.put((_END, summary_box))  # blocking put: the end marker must arrive

    def _run(self) -> None:
        flush_if_due = getattr(self.sink, "flush_if_due", None)  # the file writer flushes on a schedule
        while True:
            try:
                item = self.queue.get(timeout=_IDLE_S)
            except queue.Empty:  # no block for a while (a loaded machine): keep the file's flushes on time
                if callable(flush_if_due) and self.error is None:
                    try:
                        flush_if_due()
                    except BaseException as exc:  # noqa: BLE001 - as a failed write
                        self.error = exc
                        self._on_error(self.sink, exc)
                continue
            if isinstance(item, tuple) and item and item[0] is _END:
                self._close(item[1][0])
                return
            if self.error is not None:
                continue  # a failed sink drains its queue so the reader never waits
            try:
                self.sink.write(item)
            except BaseException as exc:  # noqa: BLE001 - reported to the engine, which stops safely
                self.error = exc
                self._on_error(self.sink, exc)

    def _close(self, summary: RunSummary) -> None:
        try:
            self.sink.close(summary)
        except BaseException as exc:  # noqa: BLE001
            if self.error is None:
                self.error = exc
            log.error("closing sink %s failed: %s", self.sink.name, exc)  # one line; the traceback at debug level
            log.debug("closing sink %s failed", self.sink.name, exc_info=True)
