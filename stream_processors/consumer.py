"""The worker's Faust consumer: faust-streaming's aiokafka consumer, without two ways it had of
skipping records around a rebalance (docs/reliability.md, "the worker that stopped committing").

Faust reads records in a fetcher task (``Consumer._drain_messages``): for each record it awaits
the hand-over to the streams (``callback(message)``), *then* writes the record's offset as read
(``_read_offset[tp]``); a later record below the read offset is dropped as already seen. On a
rebalance, and at the end of a table recovery, ``perform_seek`` seeks the partitions to their
committed offsets and sets the read offsets to match. Two things went wrong there:

1. **Partitions without a committed offset are not moved.** aiokafka's ``seek_to_committed``
   seeks only partitions whose committed offset is above 0; the others stay where their last
   fetch ended. Records fetched there before the rebalance and not handed over (Faust drops
   the rest of a fetch when the generation changes) or still in a stream's buffer (cleared on
   revocation) were never fetched again, and with nothing committed Faust commits past them.
   Traced in the crash test: an alert never delivered.
2. **A hand-over that spans the seek writes a stale read offset.** The seek runs while the
   fetcher awaits a hand-over (Faust resumes the partitions before it seeks them, and the
   fetcher goes on), and the pending write then puts the read offset back where the old fetch
   was: the records from the committed offset up to there are fetched again and dropped as read,
   no stream acknowledges them, and ``Consumer._new_offset`` commits nothing on a partition whose
   first acknowledged offset is more than one past its committed offset. The partition was never
   committed again while the worker lived (the alerts-commit stall of the crash test: committed
   1-4, acknowledged from 16-26 on, no gap recorded, read offsets at the end).

What :class:`HzConsumer` does: ``perform_seek`` also seeks the partitions aiokafka left alone to
offset 0 (the reset policy, earliest here, decides where that is), and the fetcher's iterator
(``getmany``) notices a hand-over during which a seek ran (or a new generation began): it hands
over no more of that fetch's records (they may predate the seek) and, once the seek is over,
seeks that record's partition and those of the records left out to their committed offsets
again. Table changelogs are left to Faust's recovery. Records read twice are handled twice,
which every agent of the worker allows (at-least-once). It also logs a warning for any hole
between two records of a partition handed over with no seek or rebalance in between: records
skipped by some path not known yet (none of the topics it reads is compacted or transactional).

Related reports: faust-streaming/faust#216 (a partition kept after a rebalance skips events),
robinhood/faust#681 and faust-streaming/faust#318 (offsets no longer committed after a partition
came back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer

log = logging.getLogger("hzbus.worker")


class HzConsumer(AIOKafkaConsumer):
    """faust-streaming's aiokafka consumer, without skipped records around a seek."""

    #: +1 when a ``perform_seek`` starts and +1 when it ends: odd while one runs
    _hz_epoch = 0
    #: the consumer generation the last ``perform_seek`` ran in
    _hz_seek_generation: int | None = None
    #: (generation, seek epoch) of ``_hz_last``: what is handed over after a seek starts afresh
    _hz_span: tuple[int, int] = (-1, -1)
    #: the offset last handed over of each partition, in the span above
    _hz_last: dict[Any, int]  # (set with the first span)

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets, then the partitions it did not move."""
        generation = self.app.consumer_generation_id
        self._hz_epoch += 1
        try:
            await super().perform_seek()
            changelogs = self.app.tables.changelog_topics
            assigned = self.assignment()
            rewind = {
                tp: 0
                for tp, offset in self._read_offset.items()
                if not offset and tp in assigned and tp.topic not in changelogs
            }
            if rewind:
                await self.seek_wait(rewind)
            self._hz_seek_generation = generation
        finally:
            self._hz_epoch += 1

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        generation = self.app.consumer_generation_id
        changelogs = self.app.tables.changelog_topics
        records: Any = super().getmany(timeout)  # an async generator
        again: set[Any] = set()  # partitions to read again from their committed offsets
        try:
            async for tp, message in records:
                if tp.topic in changelogs:  # the recovery's business
                    yield tp, message
                    continue
                if again:
                    again.add(tp)  # this fetch may predate the seek: not handed over, read again
                    continue
                epoch = self._hz_epoch
                self._hz_check_gap(tp, message.offset, (generation, epoch))
                yield tp, message
                # Resumed when the fetcher asks for the next record: the one above is handed
                # over and its offset written as read, perhaps over what a seek just set.
                if epoch % 2 or epoch != self._hz_epoch or generation != self.app.consumer_generation_id:
                    again.add(tp)
                    log.warning(
                        "%s[%d]: offset %d was handed over during a seek to the committed offsets",
                        tp.topic,
                        tp.partition,
                        message.offset,
                    )
        finally:
            await records.aclose()
        if again:
            await self._read_again(again)

    def _hz_check_gap(self, tp: Any, offset: int, span: tuple[int, int]) -> None:
        """Say when a partition's records are handed over with a hole between two of them and
        no seek or rebalance in between: records skipped, which no topic the worker reads may
        have (none is compacted or transactional). A diagnostic: the records are not re-read."""
        last: dict[Any, int]
        if span != self._hz_span:
            self._hz_span, self._hz_last = span, {}
        last = self._hz_last
        before = last.get(tp)
        if before is not None and offset > before + 1:
            log.warning(
                "%s[%d]: offsets %d-%d skipped (handed over %d, then %d; no seek in between)",
                tp.topic,
                tp.partition,
                before + 1,
                offset - 1,
                before,
                offset,
            )
        last[tp] = offset

    async def _read_again(self, partitions: set[Any]) -> None:
        """Read ``partitions`` again from their committed offsets once the seek under way is
        over: their read offsets may be stale, and records of theirs were not handed over. (Not
        from the first record left out: a fetch that predates the seek left out records after
        the committed offset too.)"""
        while self._hz_epoch % 2:
            await asyncio.sleep(0.01)
        if self._hz_seek_generation != self.app.consumer_generation_id:
            for tp in partitions:  # a new generation's seek is still to come, and sets it all
                self._read_offset.pop(tp, None)
            return
        assigned = self.assignment()
        offsets = {tp: self._committed_offset.get(tp) or 0 for tp in partitions if tp in assigned}
        for tp in partitions - offsets.keys():
            self._read_offset.pop(tp, None)
        if offsets:
            await self.seek_wait(offsets)  # 0: none committed, the reset policy decides
            log.warning(
                "read again from the committed offsets: %s",
                ", ".join(f"{tp.topic}[{tp.partition}]@{o}" for tp, o in sorted(offsets.items())),
            )

    async def _commit(self, offsets: Any) -> bool:
        """Commit, once the records written by the worker's librdkafka writer are acknowledged
        too (``app.hzbus_flush``, stream_processors/output.py; Faust has flushed its own
        producer already). A record that could not be written stops the worker instead."""
        flush = getattr(self.app, "hzbus_flush", None)
        if flush is not None:
            try:
                await flush()
            except Exception as exc:
                log.critical("offsets not committed: %s; the worker stops", exc)
                await self.crash(exc)
                return False
        return bool(await super()._commit(offsets))


def install(app: Any) -> None:
    """Make ``app`` use :class:`HzConsumer` (before its consumer is first used)."""
    if app._consumer is not None:
        raise RuntimeError("install the consumer class before the app's consumer is created")
    app.transport.Consumer = HzConsumer
