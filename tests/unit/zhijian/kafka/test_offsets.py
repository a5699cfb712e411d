from aiokafka import TopicPartition

from zhijian.kafka.offsets import correct_end_offsets

A, B, C = (TopicPartition("t", p) for p in range(3))


def test_short_listed_offsets_are_raised_to_the_fetch_high_watermark() -> None:
    assert correct_end_offsets({A: 11, B: 1, C: 0}, {A: 15, B: 1}) == {A: 15, B: 1, C: 0}


def test_correct_offsets_are_unchanged() -> None:
    listed = {A: 15, B: 7, C: None}
    assert correct_end_offsets(listed, {A: 15, B: 7}) == listed
    assert correct_end_offsets(listed, {}) == listed
