"""One unit convention for every threshold a user types (``--budget``, ``budgets:``, ``--where``, ``--fail-on``):
an accuracy-like metric takes ``pt``, ``%`` or ``frac``; a bare number is refused with both readings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from harbench.cli import main
from harbench.results.budgets import parse_budget
from harbench.results.compare import parse_fail_on
from harbench.units import parse_amount

UNITS = {"acc_seen": "fraction", "adapt_j": "J", "latency_ms_p50": "ms"}


@pytest.mark.parametrize(("raw", "value"), [("90pt", 0.90), ("90 pts", 0.90), ("90%", 0.90), ("0.9frac", 0.90),
                                            ("0", 0.0), ("12.5pt", 0.125)])
def test_accuracy_like_amounts_with_a_unit(raw, value):
    assert parse_amount(raw, "acc_seen", fraction=True, option="--budget", clause=raw).value == pytest.approx(value)


@pytest.mark.parametrize(("raw", "readings"), [("0.9", ("0.9pt", "0.9frac")), ("1", ("1pt", "1frac")),
                                               ("90", ("90pt", "outside [0, 1]"))])
def test_a_bare_number_on_an_accuracy_metric_shows_both_readings(raw, readings):
    with pytest.raises(ValueError) as err:
        parse_amount(raw, "acc_seen", fraction=True, option="--budget", clause=f"acc_seen>={raw}")
    message = str(err.value)
    assert "\n" not in message and "two readings" in message and all(r in message for r in readings), message


def test_every_option_reads_the_same_spelling_the_same_way():
    budget = parse_budget("acc_seen>=90pt", fractions=["acc_seen"]).value
    (drop,) = parse_fail_on("acc_seen:-90pt", UNITS)
    assert budget == pytest.approx(0.9) and drop.amount == pytest.approx(0.9) and not drop.relative
    for spec in ("acc_seen>=0.9", "acc_seen>=90"):  # 0.9 % and a silent empty match, before
        with pytest.raises(ValueError, match="two readings"):
            parse_budget(spec, fractions=["acc_seen"])
    with pytest.raises(ValueError, match="two readings"):
        parse_fail_on("acc_seen:-1", UNITS)  # was a 100-point drop: a 70-point regression passed
    with pytest.raises(ValueError, match="points or a change relative"):
        parse_fail_on("acc_seen:-1%", UNITS)
    (rel,) = parse_fail_on("adapt_j:+10%", UNITS)
    assert rel.relative and rel.amount == pytest.approx(0.10)
    with pytest.raises(ValueError, match="not accuracy-like"):
        parse_budget("latency_ms_p50<=5pt")
    assert parse_budget("latency_ms_p50<=5").value == 5.0


def test_cli_refuses_an_ambiguous_budget_in_one_line(tmp_path):
    (tmp_path / "s.yaml").write_text("name: s\ndatasets: [synthetic-drift]\nhardware: [cpu]\nmethods: [generic]\n"
                                     "budgets: ['acc_seen>=0.9']\n")
    res = CliRunner().invoke(main, ["validate", str(tmp_path / "s.yaml")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "0.9pt" in res.output and "0.9frac" in res.output, res.output
