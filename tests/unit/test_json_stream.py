"""JsonTextStream: values read one at a time, in bounded memory, with the numbers the
event store's JSON can hold."""

from __future__ import annotations

import io
import json

import pytest

from application.ports.inputs import InputError
from infrastructure.files.json_stream import JsonTextStream
from infrastructure.files.storable import MAX_NESTING

pytestmark = pytest.mark.unit


class CountingText(io.StringIO):
    """A text stream that counts what is read from it, and in how many reads."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.chars = 0
        self.reads = 0

    def read(self, size: int | None = -1) -> str:
        block = super().read(size)
        self.chars += len(block)
        self.reads += 1
        return block


def _items(text: io.TextIOBase, **options: int) -> list[object]:
    stream = JsonTextStream(text, "t.json", **options)
    return [value for _, value in stream.array_items("the records")]


def test_an_invalid_record_fails_without_reading_the_rest_of_the_input() -> None:
    rest = ",".join(json.dumps({"email": f"u{i}@x.com"}) for i in range(200_000))  # about 5 MB
    text = CountingText('[{"a": 1},\n{bad},' + rest + "]")
    with pytest.raises(InputError, match="invalid JSON at line 2"):
        _items(text)
    assert text.chars <= 2 * 65536


def test_a_long_value_is_read_in_a_few_growing_reads() -> None:
    long = "x" * 5_000_000
    text = CountingText(json.dumps([{"note": long}, {"n": 1}]))
    assert _items(text) == [{"note": long}, {"n": 1}]
    assert text.reads <= 12  # 77 reads of one block each before reads grew


def test_a_value_longer_than_the_limit_is_refused() -> None:
    text = io.StringIO(json.dumps([{"note": "x" * 300_000}]))
    with pytest.raises(InputError, match="longer than 100,000 characters"):
        _items(text, max_value_chars=100_000)


@pytest.mark.parametrize(
    ("number", "read_as"),
    [("12", 12), ("-9223372036854775808", -(2**63)), ("18446744073709551615", 2**64 - 1), ("1.5", 1.5)],
)
def test_numbers_are_read_as_they_are_stored(number: str, read_as: object) -> None:
    [value] = _items(io.StringIO(f"[{number}]"))
    assert value == read_as and type(value) is type(read_as)


def test_integers_past_64_bits_become_floats_as_orjson_reads_them() -> None:
    [value] = _items(io.StringIO("[123456789012345678901234567890]"))
    assert value == pytest.approx(1.2345678901234568e29) and isinstance(value, float)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_the_event_store_cannot_hold_are_refused(number: str) -> None:
    with pytest.raises(InputError, match=number):
        _items(io.StringIO(f'[{{"a": 1}}, {{"n": {number}}}]'))


def test_an_integer_of_ten_thousand_digits_is_refused_in_a_short_message() -> None:
    with pytest.raises(InputError, match="a number of 10000 digits, which is out of range for a double") as refused:
        _items(io.StringIO("[" + "7" * 10_000 + "]"))
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize(
    "value",
    ['"\\ud800"', '"a\\uDC00b"', '{"\\ud800": 1}', '["ok", {"x": ["\\udbff"]}]', '"\\ude00\\ud83d"'],
    ids=["alone", "low-alone", "in-a-key", "nested", "pair-in-the-wrong-order"],
)
def test_a_lone_surrogate_anywhere_in_a_value_is_refused(value: str) -> None:
    with pytest.raises(InputError, match=r"t.json: the value at line 1 holds a lone UTF-16 surrogate"):
        _items(io.StringIO(f"[{value}]"))


@pytest.mark.parametrize("text", ['["\\ud83d\\ude00"]', '["\\\\ud800"]', '["\\\\\\ud83d\\ude00"]'])
def test_surrogate_pairs_and_escaped_backslashes_are_text(text: str) -> None:
    assert _items(io.StringIO(text)) == json.loads(text)


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 900, 100_000])
def test_a_value_nested_deeper_than_the_limit_is_refused_however_deep(depth: int) -> None:
    text = "[" + "[" * depth + "]" * depth + "]"
    with pytest.raises(InputError, match=f"t.json: the value at line 1 is nested deeper than {MAX_NESTING} levels"):
        _items(io.StringIO(text))


def test_a_value_nested_as_deep_as_the_limit_is_read() -> None:
    deep = "[" * MAX_NESTING + "]" * MAX_NESTING
    assert _items(io.StringIO(f"[{deep}]")) == [json.loads(deep)]


def test_the_key_a_value_repeats_within_one_object_is_named_and_the_value_kept() -> None:
    stream = JsonTextStream(io.StringIO('[{"a": 1}, {"a": 1, "b": {"c": 1, "c": 2}}, {"a": 1, "a": 2}, 3]'), "t.json")
    seen = [(value, stream.repeated_key) for _, value in stream.array_items("the records")]
    assert seen == [({"a": 1}, None), ({"a": 1, "b": {"c": 2}}, "c"), ({"a": 2}, "a"), (3, None)]
