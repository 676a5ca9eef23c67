"""``exporter.json_decode.loads`` is ``json.loads``: same value, or the same error, for any body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter import json_decode
from simulator.connect import rest
from simulator.connect.scenario import populate_static
from simulator.connect.state import SimCluster


def _same(body: bytes) -> None:
    try:
        expected: Any = json.loads(body)
    except (ValueError, RecursionError) as exc:
        with pytest.raises(type(exc)) as got:
            json_decode.loads(body)
        assert str(got.value) == str(exc)
        return
    assert json_decode.loads(body) == expected
    assert type(json_decode.loads(body)) is type(expected)


def test_a_real_expand_body_decodes_like_json_loads() -> None:
    cluster = SimCluster("3.9.0", 2)
    populate_static(cluster, 300, 3, failed_ratio=0.2)
    body = rest.handle(cluster, "GET", "/connectors", query=[("expand", "status"), ("expand", "info")]).body
    assert len(json_decode.loads(body)) == 300
    _same(body)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b" { } ",
        b'{"a":1}',
        b' {\n\t"a" : [1, {"b": null}] ,\r\n "c":"d" }\n',
        b'{"a":1,"a":2}',  # duplicate keys: the last wins, as in json.loads
        b'{"n": NaN, "i": -Infinity}',
        b'{"s": "\\u00e9\\ud83d\\ude80 \\"q\\""}',
        '{"ü": "名前"}'.encode(),
        b'\xef\xbb\xbf{"bom": 1}',
        '{"utf16": 1}'.encode("utf-16"),
        b"[1, 2]",
        b'"just a string"',
        b"",
        b"{",
        b'{"a":1',
        b'{"a":1,}',
        b'{"a" 1}',
        b"{1: 2}",
        b'{"a":1} x',
        b'{"a":1}{"b":2}',
        b'{"a": tru}',
        b'{"a": "ctrl\x01"}',
        b"\xff\xfe\xfd",
        b'{"deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_edge_cases_decode_or_fail_like_json_loads(body: bytes) -> None:
    _same(body)


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    obj=st.dictionaries(st.text(), values, max_size=6),
    indent=st.none() | st.integers(0, 3),
    cut=st.none() | st.integers(0, 200),
)
def test_random_objects_decode_like_json_loads(obj: dict[str, Any], indent: int | None, cut: int | None) -> None:
    body = json.dumps(obj, indent=indent, ensure_ascii=False).encode()
    _same(body if cut is None else body[:cut])
