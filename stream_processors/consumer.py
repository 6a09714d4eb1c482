"""The worker's Faust consumer: faust-streaming's aiokafka consumer with its read-offset race fixed.

Faust reads records in a fetcher task (``Consumer._drain_messages``): for each record it awaits
the hand-over to the streams (``callback(message)``), *then* records the record's offset as read
(``_read_offset[tp] = offset``); a later record below the read offset is dropped as already
seen. When a rebalance happens during that await, the consumer seeks every partition back to
its committed offset (``perform_seek``: read offset = committed offset) *before* the hand-over
returns, and the pending write then puts the read offset back where the old fetch was. The
records between the committed offset and that point are re-fetched and dropped as already
read, so no stream acknowledges them, and ``Consumer._new_offset`` commits nothing on a
partition whose first acknowledged offset is more than one past its committed offset: the
partition is never committed again while the worker lives (its records are not lost: a
restarted worker reads them again from the committed offset).

Seen in the crash test as the worker that stops committing the alerts topic after a series of
restarts (docs/reliability.md), with every stalled partition committed at 3-4 and its
acknowledged offsets starting at 16-17, no gap recorded, read offsets past them.

The fix, in :meth:`HzConsumer.getmany` (the iterator the fetcher task reads): when the consumer
generation changed while a record was handed over (Faust's own ``getmany`` already stops at
the next record, ``Generation id changed``), the partition is read again from its committed
offset: seeked there again (fetch position and read offset) when the new generation's
``perform_seek`` has run, or its read offset removed when that seek is still to come (it sets
both then). The dropped records are read again and acknowledged, and commits go on. The
records read twice are handled twice, which every agent of the worker allows (at-least-once).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer

log = logging.getLogger("hzbus.worker")


class HzConsumer(AIOKafkaConsumer):
    """faust-streaming's aiokafka consumer, without the stale read offset after a rebalance."""

    _hz_seeks = 0  # perform_seek calls completed
    _hz_seeked: dict[Any, int | None]  # the read offsets the last one set
    _hz_seek_generation: int | None = None  # the consumer generation it ran in

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets, then the partitions it did not move: aiokafka's
        ``seek_to_committed`` seeks only partitions with a committed offset above 0, and leaves
        the others where their last fetch ended. Records fetched there before a rebalance and
        not yet handed over (Faust drops them when the generation changes) or still in a
        stream's buffer (cleared on revocation) would be skipped, and with no committed offset
        Faust commits past them: those partitions are seeked to offset 0 (the reset policy,
        earliest here, decides where that is). Table changelogs are left to the recovery."""
        generation = self.app.consumer_generation_id
        await super().perform_seek()
        changelogs = self.app.tables.changelog_topics
        assigned = self.assignment()
        rewind = {
            tp: 0
            for tp, o in self._read_offset.items()
            if not o and tp in assigned and tp.topic not in changelogs
        }
        if rewind:
            await self.seek_wait(rewind)
        self._hz_seeked = dict(self._read_offset)
        self._hz_seek_generation = generation
        self._hz_seeks += 1

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        generation = self.app.consumer_generation_id
        records: Any = super().getmany(timeout)  # an async generator
        try:
            async for tp, message in records:
                seeks = self._hz_seeks
                yield tp, message
                # Resumed when the fetcher asks for the next record: the one above is handed
                # over and its offset written as read. A seek to the committed offsets during
                # the hand-over (a rebalance, or the end of a table recovery: Faust resumes the
                # partitions before it seeks them) made that write stale, and the rest of this
                # fetch predates the seek.
                if self._hz_seeks != seeks or self.app.consumer_generation_id != generation:
                    await self._read_again(tp, message.offset)
                    return
        finally:
            await records.aclose()

    async def _read_again(self, tp: Any, offset: int) -> None:
        """After a record's hand-over spanned a seek to the committed offsets: read its
        partition again from there, as the seek meant to."""
        if self._read_offset.get(tp) != offset:
            return  # the seek came after the write: nothing stale
        if self._hz_seek_generation == self.app.consumer_generation_id and tp in self._hz_seeked:
            # Seek again, fetch position and read offset together: a read offset set back
            # alone, while the fetch went on from the old position, would make Faust take the
            # records in between for a gap (offsets without records) and commit past them.
            committed = self._hz_seeked[tp]
            await self.seek_wait({tp: committed or 0})  # 0: none committed, the reset policy decides
            again: int | None = committed
        else:  # a new generation's seek is still to come (and sets it), or tp is not ours now
            again = None
            self._read_offset.pop(tp, None)
        log.warning(
            "%s[%d]: offset %d was handed over across a seek to the committed offsets; read again from %s",
            tp.topic,
            tp.partition,
            offset,
            "the committed offset" if again is None else again,
        )


def install(app: Any) -> None:
    """Make ``app`` use :class:`HzConsumer` (before its consumer is first used)."""
    if app._consumer is not None:
        raise RuntimeError("install the consumer class before the app's consumer is created")
    app.transport.Consumer = HzConsumer
