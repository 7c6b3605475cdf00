"""scripts/pooled_summaries.py: the folds' exports pooled into the plugins' summaries (issue #33, item 3)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pooled_summaries.py"


def _script():
    spec = importlib.util.spec_from_file_location("pooled_summaries", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(method, user, seen, unseen, fold):
    return {"dataset": "sp-sw-har", "dataset_params": {"adapt_context": "phone"}, "user": user, "method": method,
            "method_params": {"epochs": 30}, "variant": "", "hardware": "cpu", "seed": 0, "status": "ok",
            "acc_seen": seen, "acc_unseen": unseen, "bacc_seen": seen, "bacc_unseen": unseen, "facts": {},
            "run_id": fold}


def test_folds_are_pooled_into_one_summary_per_plugin(tmp_path, capsys):
    paths = []
    for fold, users in enumerate((["s01", "s02"], ["s03", "s04"]), start=1):
        rows = [r for i, u in enumerate(users) for r in (
            _row("generic", u, 0.80, 0.80, fold), _row("crop-ft", u, 0.90, 0.60 + 0.01 * i, fold),
            _row("crop", u, 0.88, 0.75, fold))]
        path = tmp_path / f"fold{fold}.json"
        path.write_text(json.dumps(rows))
        paths.append(str(path))
    assert _script().main([*paths, "--format", "json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    crop = next(a for a in answers if a["title"].startswith("CRoP"))
    line = dict(zip(crop["headers"], crop["rows"][0]))
    assert line["users"] == 4 and line["M^C"] == "crop-ft"  # both folds' users in one claim


def test_a_file_that_is_not_an_export_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit, match="bad.json: expected a JSON list of job rows"):
        _script().main([str(bad)])
