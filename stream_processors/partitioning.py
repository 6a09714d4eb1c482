"""Kafka's default partitioning of keyed records, compiled (``hzbus/native.py``).

Kafka's clients put a keyed record on partition ``toPositive(murmur2(key)) % partitions``
(Java's ``Utils.murmur2``, seed ``0x9747b28c``); Faust and aiokafka do it with aiokafka's
pure-Python ``murmur2``, which a profile of the worker put at ~7% of its CPU (each fact record it
writes, and each entry the route stage files by key). This is the same function in typed code
that mypyc compiles. Each 32-bit product is taken in two halves (``_mul``), so that no
intermediate value leaves the range mypyc keeps unboxed (62 bits).
``tests/unit/test_partitioning.py`` checks it against aiokafka's function and against values of
the Java client.
"""

from __future__ import annotations

from typing import Final

_M_LOW: Final = 0x5BD1E995 & 0xFFFF  # Final: compiled as constants, not looked up
_M_HIGH: Final = 0x5BD1E995 >> 16
_MASK: Final = 0xFFFFFFFF


def _mul(x: int) -> int:
    """``x * 0x5bd1e995`` modulo 2**32, for ``0 <= x < 2**32``."""
    return (x * _M_LOW + (((x * _M_HIGH) & 0xFFFF) << 16)) & _MASK


def murmur2(data: bytes) -> int:
    """Java's ``Utils.murmur2`` of ``data``, as an unsigned 32-bit value (aiokafka's result)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    end = length - length % 4
    i = 0
    while i < end:
        k = _mul(data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))
        k = _mul(k ^ (k >> 24))
        h = _mul(h) ^ k
        i += 4
    extra = length % 4
    if extra >= 3:
        h ^= data[end + 2] << 16
    if extra >= 2:
        h ^= data[end + 1] << 8
    if extra >= 1:
        h = _mul(h ^ data[end])
    h = _mul(h ^ (h >> 13))
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record with ``key`` on a topic of
    ``partitions`` partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class DefaultPartitioner:
    """aiokafka's ``DefaultPartitioner`` for keyed records (Faust's ``producer_partitioner``):
    the same partition, computed by the compiled ``murmur2``. A record without a key goes to a
    random partition, as there (aiokafka's own function decides it)."""

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            from aiokafka.partitioner import DefaultPartitioner as Random

            return int(Random()(None, all_partitions, available))
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
