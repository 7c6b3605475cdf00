import pytest

from harbench_duet.summary import duet_summary


def row(method, acc, adapt_s, adapt_j, user="u00", seed=0, status="ok", variant="", comm_j=None):
    facts = {} if comm_j is None else {"comm_j": comm_j, "cloud_s": 0.001}
    return {"method": method, "variant": variant, "user": user, "seed": seed, "status": status, "acc_seen": acc,
            "acc_unseen": acc - 0.1, "adapt_s": adapt_s, "adapt_j": adapt_j, "facts": facts}


def by_method(summary):
    return {r[0]: r for r in summary["rows"]}


def test_ratios_and_gains_from_fabricated_rows():
    rows = [
        row("generic", 0.80, 0.0, 0.0), row("generic", 0.90, 0.0, 0.0, user="u01"),
        row("finetune-full", 0.95, 2.0, 20.0), row("finetune-full", 0.95, 4.0, 40.0, user="u01"),
        row("duet", 0.90, 0.01, 0.09, comm_j=0.01), row("duet", 0.92, 0.03, 0.19, user="u01", comm_j=0.01),
        row("duet", 0.10, 9.0, 90.0, user="u02", status="failed"),
    ]
    s = duet_summary(rows)
    table = by_method(s)
    assert list(table) == ["generic", "finetune-full", "duet"]
    duet = table["duet"]
    assert duet[1] == 2  # the failed job is ignored
    assert duet[2] == "0.910"
    assert duet[4] == "+6.0"  # 0.91 - 0.85 in points
    assert duet[6] == "0.1500"  # mean adapt_j 0.14 + comm 0.01
    assert duet[8] == "150x"  # 3.0 s / 0.02 s
    assert duet[9] == "200x"  # 30 J / 0.15 J
    assert table["finetune-full"][8] == "1x"
    assert len(s["headers"]) == len(duet)


def test_no_duet_rows_means_no_summary():
    assert duet_summary([row("generic", 0.8, 0.0, 0.0), row("duet", 0.9, 0.1, 1.0, status="failed")]) is None


def test_missing_reference_leaves_ratios_blank():
    s = duet_summary([row("duet", 0.9, 0.01, 0.1, comm_j=0.0)])
    assert by_method(s)["duet"][8:] == ["-", "-"]
    assert by_method(s)["duet"][4] == "-"


@pytest.mark.parametrize("variant", ["hidden=0", ""])
def test_variants_get_their_own_row(variant):
    s = duet_summary([row("duet", 0.9, 0.01, 0.1, variant=variant), row("duet", 0.8, 0.01, 0.1, variant="hidden=64")])
    assert len(s["rows"]) == 2
