import pytest

from harbench.builtin.methods import FineTune
from harbench.suite import SuiteError, expand_grid, parse_suite, variant_label

from .conftest import tiny_suite


def errors_of(text, registry):
    with pytest.raises(SuiteError) as exc:
        parse_suite(text, "s.yaml", registry)
    return exc.value.problems


def test_tiny_suite_resolves_with_defaults(registry):
    s = parse_suite(tiny_suite(), "s.yaml", registry)
    ft = s.methods[1]
    assert ft.params["epochs"] == 2 and ft.params["lr"] == 1e-2 and ft.variant == "epochs=2"
    assert s.targets == {0: ["u00", "u01"]}
    assert "acc_seen" in s.metrics


def test_wrong_type_names_the_yaml_path(registry):
    text = tiny_suite(methods="[generic, finetune-full, {name: finetune-last, params: {lr: fast}}]")
    assert ("methods[2].params.lr", "Input should be a valid number, unable to parse string as a number") in errors_of(text, registry)


def test_unknown_plugin_lists_the_available_ones(registry):
    (loc, msg), = errors_of(tiny_suite(methods="[generic, nope]"), registry)
    assert loc == "methods[1].name" and "unknown method 'nope'" in msg and "finetune-full" in msg


def test_unknown_parameter_is_named(registry):
    (loc, msg), = errors_of(tiny_suite(methods="[{name: finetune-full, params: {lrr: 0.1}}]"), registry)
    assert loc == "methods[0].params.lrr" and "known:" in msg


@pytest.mark.parametrize("bad, where", [
    ("seeds: []", "seeds"),
    ("target_users: -1", "target_users"),
    ("target_users: 5", "target_users"),
    ("target_users: [u00, zz]", "target_users"),
    ("workers: 0", "workers"),
    ("colour: red", "colour"),
])
def test_field_errors(registry, bad, where):
    text = tiny_suite() + "\n" + bad  # a repeated YAML key: the later value wins
    assert any(loc.startswith(where) for loc, _ in errors_of(text, registry))


@pytest.mark.parametrize("bad", ["target_users: []", "target_users: 0", "target_users: yes", "target_users: {a: 1}"])
def test_target_users_get_one_line_and_never_an_empty_run(registry, bad):
    """``[]`` validated and stored an empty "complete" run; ``0`` gave two contradicting lines (one per union branch)."""
    (loc, msg), = errors_of(tiny_suite() + "\n" + bad, registry)
    assert loc == "target_users" and msg.startswith("expected a positive number of target users"), msg


def test_yaml_tags_cannot_construct_objects(registry):
    (loc, msg), = errors_of("name: !!python/object/apply:os.system ['echo pwned']\n", registry)
    assert "invalid YAML" in msg


def test_duplicate_configurations_are_rejected(registry):
    problems = errors_of(tiny_suite(methods="[generic, generic]"), registry)
    assert any("appears twice" in m for _, m in problems)


def test_dataset_checks_its_own_parameters(registry):
    text = tiny_suite().replace("k: 3", "k: 3, adapt_context: nowhere")
    (loc, msg), = errors_of(text, registry)
    assert loc == "datasets[0].params.adapt_context"


def test_grid_expansion_order_independent_and_list_params():
    declared = FineTune.parameters
    grid = expand_grid({"lr": [0.1, 0.01], "epochs": [1, 2, 3]}, declared)
    assert len(grid) == 6 and {"lr": 0.01, "epochs": 3} in grid
    from harbench.builtin.datasets import SyntheticDrift

    d = SyntheticDrift.parameters
    assert expand_grid({"contexts": ["home", "sensor"]}, d) == [{"contexts": ["home", "sensor"]}]
    assert len(expand_grid({"contexts": [["home"], ["home", "sensor"]]}, d)) == 2
    assert variant_label({"lr": 0.1, "epochs": 15, "optimizer": "adam", "batch_size": 16, "val_fraction": 0.25}, declared) == "lr=0.1"


def test_validate_command_reports_and_exits_2_without_touching_the_store(registry, write_suite, tmp_path):
    from click.testing import CliRunner

    from harbench.cli import main

    good = write_suite(tiny_suite(), "good.yaml")
    res = CliRunner().invoke(main, ["validate", str(good)])
    assert res.exit_code == 0 and "4 jobs" in res.output
    bad = write_suite(tiny_suite(methods="[{name: finetune-full, params: {lr: x}}]"), "bad.yaml")
    res = CliRunner().invoke(main, ["run", str(bad), "--results", str(tmp_path / "res")])
    assert res.exit_code == 2
    assert "bad.yaml: methods[0].params.lr" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "res").exists()


def test_swept_parameters_are_named_even_at_their_default(registry):
    s = parse_suite(tiny_suite(methods="[{name: finetune-full, params: {optimizer: [adam, sgd]}}]"), "s.yaml", registry)
    assert [m.variant for m in s.methods] == ["optimizer=adam", "optimizer=sgd"]


def test_a_dataset_refuses_a_set_of_targets_before_anything_runs(registry):
    """``Dataset.check_targets``: a dataset whose population depends on the targets (sp-sw-har's crossed
    ``groups``) refuses a bad set when the suite is validated, in one line naming it."""
    from harbench.builtin.datasets import SyntheticDrift

    from .conftest import plugin_module

    class Paired(SyntheticDrift):
        name = "paired"

        def check_targets(self, targets):
            odd = [t for t in targets if int(t[1:]) % 2]
            return f"odd users {odd} cannot be targets here" if odd else None

    registry.add_plugin(plugin_module("paired", harbench_register_datasets=lambda register: register(Paired)),
                        "harbench-paired", "0.1")
    text = tiny_suite().replace("synthetic-drift", "paired")
    assert parse_suite(text.replace("target_users: 2", "target_users: [u00, u02]"), "s.yaml", registry).targets
    (loc, msg), = errors_of(text, registry)  # u00, u01
    assert (loc, msg) == ("target_users", "dataset 'paired': odd users ['u01'] cannot be targets here")
