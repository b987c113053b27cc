"""Task specs (one registry, read by every consumer) and the named recipes (``base_config``, ``bscl train``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bscl import cli
from bscl.data import AVAILABLE_TASKS, TASK_SPECS, TASKS, get_spec, load_task
from bscl.experiments import recipes, reproduce
from bscl.losses.modules import loss_options
from bscl.training.config import RunConfig, base_config
from bscl.training.peers import PEER_LOSSES

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"
ROOT = Path(__file__).resolve().parents[1]


def test_registry_keeps_the_public_names():
    assert TASKS == ["stsb", "mrpc", "pfcc", "cqa-a", "cqa-b", "qqp", "antique", "wiki-unsup", "generic"]
    assert AVAILABLE_TASKS == ["stsb", "mrpc", "pfcc", "cqa-a", "cqa-b", "wiki-unsup"]
    with pytest.raises(ValueError, match="known tasks: stsb"):
        get_spec("nope")


@pytest.mark.parametrize("name", ["stsb", "mrpc", "pfcc", "cqa-a", "cqa-b", "qqp", "antique"])
def test_loader_takes_metric_kind_and_threshold_from_its_spec(name):
    spec = get_spec(name)
    task = load_task(name, FIXTURES)
    assert (task.name, task.kind, task.metric, task.binarize_threshold) == (
        spec.name,
        spec.kind,
        spec.metric,
        spec.threshold,
    )


def test_paper_hyperparameters_are_the_papers():
    # Sec. 5.2 / NOTES.md, written out by hand here (the specs are the one copy in the code)
    expected = {  # tau, normalization, mu, group size, lr, bias correction, batch
        "stsb": (0.1, "l2", 0.1, 8, 2e-5, False, 30),
        "mrpc": (0.1, "l2", 0.1, 4, 2e-5, False, 30),
        "pfcc": (1.2, "coordinate", 0.9, 8, 2e-5, False, 30),
        "cqa-a": (0.055, "l2", 0.1, 8, 2e-5, True, 30),
        "cqa-b": (0.07, "l2", 0.9, 5, 3e-5, True, 30),
        "qqp": (1.2, "coordinate", 0.1, 8, 2e-5, False, 50),
        "antique": (0.1, "l2", 0.9, 8, 2e-5, False, 50),
    }
    for name, values in expected.items():
        p = get_spec(name).paper
        assert (p.tau, p.normalization, p.mu, p.group_size, p.learning_rate, p.adam_bias_correction,
                p.batch_size) == values, name  # fmt: skip
    assert get_spec("pfcc").paper.margin == 0.6 and get_spec("stsb").paper.margin == 0.5


def test_recipes_set_only_fields_of_the_loss_they_name():
    RunConfig().validate()  # the defaults stay valid
    for spec in TASK_SPECS.values():
        for name in recipes.recipe_names(spec.name):
            recipe = recipes.recipe(spec.name, name)
            loss = recipe["loss"]["name"]
            assert set(recipe["loss"]) - {"name"} <= set(loss_options(loss)), (spec.name, name)
            base_config(spec.name, recipe=recipe).validate()
            assert recipes.reason(spec.name, name), (spec.name, name)
            for folder in recipes.record_folders(spec.name, name):  # the records that support it exist
                assert (ROOT / folder).is_dir(), (spec.name, name, folder)
        for peer in recipes.peers(spec.name):
            assert peer in PEER_LOSSES, (spec.name, peer)
    assert recipes.recipe("generic") == {} and recipes.peers("generic") == ()


def test_pearson_combo_recipes_carry_the_combos_tau_mu_and_normalization():
    # Sec. 7: eq. 6 with the Pearson term in place of MSE, so it takes the combo's hyperparameters;
    # Pearson alone has none (and must not inherit the combo's)
    for task in ("mrpc", "cqa-a", "cqa-b"):
        p = get_spec(task).paper
        loss = recipes.recipe(task, "pearson-combo")["loss"]
        assert loss == {"name": "pearson-combo", "tau": p.tau, "normalization": p.normalization, "mu": p.mu}
    assert recipes.recipe("cqa-a", "pearson")["loss"] == {"name": "pearson"}
    assert recipes.recipe("cqa-a", "pearson")["batching"] == {"strategy": "example", "group_size": 8}


def test_base_config_switching_the_loss_drops_the_recipes_loss_fields():
    cfg = base_config("pfcc", loss="triplet")
    assert cfg.loss.name == "triplet" and cfg.loss.margin == 0.6
    assert cfg.loss.normalization == RunConfig().loss.normalization  # not the BSC recipe's "coordinate"
    assert cfg.batching.group_size == 8 and cfg.train.batch_size == 30
    assert base_config("generic").to_dict() == {
        **RunConfig().to_dict(),
        "data": {**RunConfig().to_dict()["data"], "task": "generic"},
    }


def _resolved(monkeypatch, argv):
    import bscl.run

    seen = {}
    monkeypatch.setattr(bscl.run, "run_training", lambda cfg: seen.setdefault("cfg", cfg))
    assert cli.main(["train", *argv]) == 0
    return seen["cfg"]


def test_bscl_train_with_a_task_starts_from_its_paper_recipe(monkeypatch):
    cfg = _resolved(monkeypatch, ["--data.task", "cqa-b"])  # CQA-B's default recipe is the paper's
    assert cfg.data.task == "cqa-b"
    assert (cfg.loss.name, cfg.loss.tau, cfg.loss.mu, cfg.loss.normalization) == ("combo", 0.07, 0.9, "l2")
    assert (cfg.batching.strategy, cfg.batching.group_size) == ("example", 5)
    assert (cfg.train.learning_rate, cfg.train.adam_bias_correction, cfg.train.batch_size) == (3e-5, True, 30)
    assert cfg.train.interpolate == 1.0
    cfg = _resolved(monkeypatch, ["--data.task", "cqa-a", "--recipe", "paper"])
    assert (cfg.loss.name, cfg.loss.tau, cfg.loss.mu, cfg.loss.normalization) == ("combo", 0.055, 0.1, "l2")
    assert (cfg.batching.strategy, cfg.batching.group_size) == ("example", 8)
    assert (cfg.train.learning_rate, cfg.train.adam_bias_correction, cfg.train.batch_size) == (2e-5, True, 30)


def test_a_task_whose_best_measured_recipe_is_not_the_papers_defaults_to_it(monkeypatch):
    cfg = _resolved(monkeypatch, ["--data.task", "cqa-a"])  # ours: MSE with the paper's other settings
    assert (cfg.loss.name, cfg.batching.strategy, cfg.train.learning_rate) == ("mse", "example", 2e-5)


def test_a_named_recipe_other_than_the_default_is_taken(monkeypatch):
    # ours: BSC with L2 normalization at tau 0.05, one mined hard negative per pair and WiSE-FT at 0.5,
    # the paper's AdamW without bias correction (chosen on split 2's dev over 5 seeds)
    cfg = _resolved(monkeypatch, ["--data.task", "pfcc"])
    assert (cfg.loss.name, cfg.loss.tau, cfg.loss.normalization) == ("bsc", 0.05, "l2")
    assert (cfg.data.hard_negatives, cfg.train.interpolate, cfg.train.adam_bias_correction) == (1, 0.5, False)
    cfg = _resolved(monkeypatch, ["--data.task", "pfcc", "--recipe", "hard-negatives-wise-bias-corrected"])
    assert (cfg.loss.name, cfg.loss.tau, cfg.loss.normalization) == ("bsc", 1.2, "coordinate")
    assert (cfg.data.hard_negatives, cfg.train.interpolate, cfg.train.adam_bias_correction) == (1, 0.5, True)
    cfg = _resolved(monkeypatch, ["--data.task", "pfcc", "--recipe", "paper"])
    assert (cfg.loss.name, cfg.loss.tau, cfg.loss.normalization) == ("bsc", 1.2, "coordinate")
    assert (cfg.data.hard_negatives, cfg.train.interpolate) == (None, 1.0)
    assert _resolved(monkeypatch, ["--data.task", "pfcc", "--recipe", "wise"]).train.interpolate == 0.5


def test_an_explicit_option_still_wins_over_the_recipe(monkeypatch, tmp_path):
    cfg = _resolved(
        monkeypatch, ["--data.task", "cqa-b", "--loss.tau", "0.2", "--batching.strategy", "random"]
    )
    assert cfg.loss.tau == 0.2 and cfg.batching.strategy == "random" and cfg.loss.mu == 0.9
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text(yaml.safe_dump({"data": {"task": "cqa-b"}, "train": {"learning_rate": 1e-5}}))
    cfg = _resolved(monkeypatch, ["--config", str(run_yaml)])  # the YAML names the task
    assert (cfg.loss.tau, cfg.batching.group_size, cfg.train.learning_rate) == (0.07, 5, 1e-5)
    cfg = _resolved(monkeypatch, ["--data.task", "pfcc", "--loss.name", "mse"])
    assert cfg.loss.name == "mse" and cfg.loss.tau == RunConfig().loss.tau


def test_recipe_option_picks_a_named_recipe_of_the_task(monkeypatch, capsys):
    cfg = _resolved(monkeypatch, ["--data.task", "mrpc", "--recipe", "pearson-combo"])
    assert (cfg.loss.name, cfg.loss.mu) == ("pearson-combo", 0.1)
    cfg = _resolved(monkeypatch, ["--data.task", "mrpc", "--recipe=paper", "--loss.mu", "0.3"])
    assert (cfg.loss.name, cfg.loss.mu) == ("combo", 0.3)  # options still override the recipe
    assert _resolved(monkeypatch, ["--data.task", "mrpc"]).loss.name == "pearson-combo"  # default: ours
    cfg = _resolved(monkeypatch, ["--data.task", "cqa-b", "--recipe", "hard-negatives"])  # sets a data field
    assert (cfg.data.task, cfg.data.hard_negatives, cfg.loss.name) == ("cqa-b", 3, "combo")
    assert cli.main(["train", "--data.task", "mrpc", "--recipe", "nope"]) == 2
    err = capsys.readouterr().err
    assert (
        "task 'mrpc' has no recipe 'nope'; recipes: ['ours', 'paper', 'pearson-combo', 'pearson-combo-bias-corrected']"
        in err
    )


def test_reproduce_reads_the_paper_settings_and_numbers_from_the_specs():
    assert reproduce.PAPER["stsb"]["bsc then mse"] == get_spec("stsb").paper_results["bsc then mse"]
    assert set(reproduce.REPRODUCIBLE) == {n for n, s in TASK_SPECS.items() if s.paper is not None}
    s = reproduce.task_settings("pfcc", "mse")
    assert s["loss"] == {"name": "mse"} and "strategy" not in s["batching"]
    assert reproduce.task_settings("pfcc", "bsc")["loss"] == {
        "name": "bsc",
        "tau": 1.2,
        "normalization": "coordinate",
    }


def test_consumers_hold_no_copy_of_the_per_task_facts():
    from bscl.evaluation import evaluators
    from bscl.reporting import report

    assert not hasattr(report, "TASK_PRIMARY_METRIC")
    assert not hasattr(evaluators, "RANKING_METRICS")
    assert not hasattr(reproduce, "TASK_SETTINGS") and not hasattr(reproduce, "TASK_METRICS")
    assert report.primary_metric({}, {"data": {"task": "pfcc"}}) == "has_positive@1"
    task = load_task("cqa-a", FIXTURES)
    assert evaluators.ranking_metric_names(task) == list(get_spec("cqa-a").metrics)


def test_merge_recipes_sets_fields_on_top_without_touching_the_base():
    from bscl.experiments.cells import merge_recipes

    base = {"train": {"learning_rate": 2e-5, "batch_size": 30}, "loss": {"name": "bsc"}}
    merged = merge_recipes(base, {"train": {"interpolate": 0.5}}, {"data": {"hard_negatives": 3}})
    assert merged == {
        "train": {"learning_rate": 2e-5, "batch_size": 30, "interpolate": 0.5},
        "loss": {"name": "bsc"},
        "data": {"hard_negatives": 3},
    }
    assert base == {"train": {"learning_rate": 2e-5, "batch_size": 30}, "loss": {"name": "bsc"}}
