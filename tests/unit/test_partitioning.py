"""The compiled partitioner puts every key where Kafka's clients do."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner as AiokafkaPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from stream_processors.partitioning import DefaultPartitioner, murmur2, partition_for

#: Kafka's own test values (clients/.../UtilsTest.testMurmur2, signed 32-bit)
JAVA = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_murmur2_gives_the_java_clients_values() -> None:
    for data, signed in JAVA.items():
        assert murmur2(data) == signed & 0xFFFFFFFF, data


@given(st.binary(max_size=80))
def test_murmur2_equals_aiokafkas_for_any_bytes(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.binary(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_a_key_goes_to_the_partition_aiokafka_gives_it(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    expected = AiokafkaPartitioner()(key, all_partitions, all_partitions)
    assert partition_for(key, partitions) == expected
    assert DefaultPartitioner()(key, all_partitions, all_partitions) == expected


def test_the_worker_keys_of_every_length_class_and_non_ascii() -> None:
    keys = [b"", b"c", b"ca", b"cas", b"case:HZ-2026-0001", "subject:浙江".encode(), bytes(range(256))]
    for key in keys:
        assert murmur2(key) == aiokafka_murmur2(key), key


def test_a_record_without_key_goes_to_an_available_partition() -> None:
    assert DefaultPartitioner()(None, [0, 1, 2, 3], [2]) == 2
