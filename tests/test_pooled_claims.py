"""Folds pooled into one claim (#33 item 3, #34): a plugin's summary of the pooled rows counts every fold's users."""

from __future__ import annotations

import pytest

from harbench.results.pooling import pool_rows


def _row(method, user, seen, unseen, fold):
    return {"dataset": "sp-sw-har", "dataset_params": {"adapt_context": "phone"}, "user": user, "method": method,
            "method_params": {"epochs": 30}, "variant": "", "hardware": "cpu", "seed": 0, "status": "ok",
            "acc_seen": seen, "acc_unseen": unseen, "bacc_seen": seen, "bacc_unseen": unseen, "facts": {},
            "run_id": fold}


def _fold(fold, users):
    return [r for i, u in enumerate(users) for r in (
        _row("generic", u, 0.80, 0.80, fold), _row("crop-ft", u, 0.90, 0.60 + 0.01 * i, fold),
        _row("crop", u, 0.88, 0.75, fold))]


def test_folds_are_pooled_into_one_summary_per_plugin():
    from harbench_crop import crop_summary

    rows = pool_rows([("fold 1", _fold(1, ["s01", "s02"])), ("fold 2", _fold(2, ["s03", "s04"]))])
    crop = crop_summary(rows)
    line = dict(zip(crop["headers"], crop["rows"][0]))
    assert line["users"] == 4 and line["M^C"] == "crop-ft"  # both folds' users in one claim


def test_a_target_in_two_folds_is_refused():
    with pytest.raises(ValueError, match=r"^cannot pool fold 1 and fold 2: both hold the generic job of user 's02', "
                                         r"seed 0 on sp-sw-har"):
        pool_rows([("fold 1", _fold(1, ["s01", "s02"])), ("fold 2", _fold(2, ["s02", "s03"]))])
