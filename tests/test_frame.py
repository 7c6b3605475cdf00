"""Frame groupings are query.group_rows' groups: the same keys, in the same first-appearance order, holding the
same rows, whatever the columns hold (strings, None and "", numbers, dicts shared or not, missing keys)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harbench.results.frame import Frame
from harbench.results.query import group_rows

PARAMS = [{"users": 5}, {"users": 6}, {"a": [1, 2]}]
VALUE = st.one_of(st.sampled_from(["", "a", "b", "tbft"]), st.none(), st.integers(0, 3),
                  st.sampled_from(PARAMS), st.builds(dict, st.just([("users", 5)])))
ROW = st.dictionaries(st.sampled_from(["method", "variant", "hardware", "seed", "dataset_params"]), VALUE)


@settings(max_examples=200, deadline=None)
@given(st.lists(ROW, max_size=40), st.lists(st.sampled_from(["method", "variant", "hardware", "seed",
                                                            "dataset_params"]), min_size=1, max_size=4, unique=True))
def test_frame_grouping_is_group_rows(rows, columns):
    expected = group_rows(rows, columns)
    g = Frame(rows).grouping(columns)
    assert g.keys == list(expected)
    assert [[rows[i] for i in m.tolist()] for m in g.members] == list(expected.values())
    assert all(rows[i] is r for m, items in zip(g.members, expected.values()) for i, r in zip(m.tolist(), items))


def test_frame_values_turn_labels_booleans_and_non_finite_into_nan():
    import math

    rows = [{"x": 0.5}, {"x": None}, {}, {"x": math.inf}, {"x": "rapl"}, {"x": True}, {"x": 3}, {"x": "2.5"}]
    f = Frame(rows)
    assert [None if math.isnan(v) else v for v in f.values("x").tolist()] == [0.5, None, None, None, None, None, 3.0,
                                                                                None]
    assert f.texts("x") == {4: "rapl", 7: "2.5"}
    floats = Frame([{"x": 0.5}, {"x": None}, {"x": -math.inf}, {"x": math.nan}])  # the all-float path
    assert [None if math.isnan(v) else v for v in floats.values("x").tolist()] == [0.5, None, None, None]
