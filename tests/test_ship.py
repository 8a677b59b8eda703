"""training.ship: the shipped checkpoint carries its weights, its history and its measured scores."""
from __future__ import annotations

import json

import pytest
import torch

from rtdenoise.models.registry import build_preset, load_checkpoint, save_checkpoint
from training import ship

NOISY = {"pesq": 1.26, "stoi": 0.845, "si_sdr": 5.6, "si_sdr_i": 0.0, "noise_left_db": 0.0,
         "speech_kept_db": 0.0, "clips": 240}


def scores(pesq: float) -> dict:
    return {"overall": {"pesq": pesq, "stoi": 0.86912, "si_sdr": 10.5, "si_sdr_i": 4.89123,
                        "noise_left_db": -25.2, "speech_kept_db": -3.75, "clips": 240}}


@pytest.fixture
def files(tmp_path):
    """A trained checkpoint with its own recipe, the checkpoint it grew from, and an evaluation file."""
    history = save_checkpoint(build_preset("bands-small"), tmp_path / "old.pt", name="old", trained=True,
                              training={"recipe": {"lr": 1.0}, "stages": ["stage 1: old"], "hardware": "a CPU",
                                        "averaged": ["h1.pt", "h2.pt"]})
    new = save_checkpoint(build_preset("bands-small"), tmp_path / "new.pt", name="new", trained=True,
                          training={"recipe": {"lr": 3e-4}, "epochs": 7, "averaged": ["a.pt", "b.pt"]})
    evaluation = tmp_path / "ood.json"
    evaluation.write_text(json.dumps({"noisy input": {"overall": NOISY}, "new": scores(1.74), "old": scores(1.70),
                                      "new (stream)": scores(1.69)}))
    return tmp_path, history, new, evaluation


def test_ship_carries_the_history_appends_stages_and_copies_the_named_systems_scores(files):
    tmp_path, history, new, evaluation = files
    out = tmp_path / "shipped.pt"
    assert ship.main([str(new), "--out", str(out), "--name", "bands", "--history", str(history),
                      "--metrics", f"ood={evaluation}:new", "--metrics", f"ood-stream={evaluation}:new (stream)",
                      "--notes", "the default", "--stage", "stage 2: new"]) == 0
    model, checkpoint = load_checkpoint(out)
    original, _ = load_checkpoint(new)
    assert all(torch.equal(value, original.state_dict()[name]) for name, value in model.state_dict().items())
    training = checkpoint["training"]
    assert training["stages"] == ["stage 1: old", "stage 2: new"] and training["hardware"] == "a CPU"
    assert training["recipe"] == {"lr": 3e-4} and training["epochs"] == 7 and training["averaged"] == ["a.pt", "b.pt"]
    assert checkpoint["name"] == "bands" and checkpoint["notes"] == "the default" and checkpoint["trained"]
    ood = checkpoint["metrics"]["ood"]
    assert ood["pesq"] == 1.74 and ood["si_sdr_i"] == 4.8912 and ood["noisy.stoi"] == 0.845
    assert ood["data"] == "data/lab/ood.pt (240 mixtures)"
    stream = checkpoint["metrics"]["ood-stream"]  # training.evaluate --stream's scores of the same set
    assert stream["pesq"] == 1.69 and stream["data"] == "data/lab/ood.pt (240 mixtures, joined into one stream)"


def test_keep_recipe_keeps_the_historys_recipe_when_only_a_setting_changed(files):
    tmp_path, history, new, _ = files
    out = tmp_path / "shipped.pt"
    assert ship.main([str(new), "--out", str(out), "--name", "x", "--history", str(history), "--keep-recipe"]) == 0
    training = load_checkpoint(out)[1]["training"]
    assert training["recipe"] == {"lr": 1.0} and "epochs" not in training

    single = save_checkpoint(build_preset("bands-small"), tmp_path / "single.pt", name="s", trained=True,
                             training={"recipe": {"lr": 2.0}})  # one run, not averaged
    assert ship.main([str(single), "--out", str(out), "--name", "x", "--history", str(history)]) == 0
    training = load_checkpoint(out)[1]["training"]
    assert training["recipe"] == {"lr": 2.0} and "averaged" not in training and training["hardware"] == "a CPU"


@pytest.mark.parametrize("metrics", ["ood={json}:missing", "ood={json}:noisy input", "ood={dir}/none.json:new"])
def test_a_system_or_file_that_is_not_there_is_refused_and_writes_nothing(files, capsys, metrics):
    tmp_path, history, new, evaluation = files
    option = metrics.format(json=evaluation, dir=tmp_path)
    if option.endswith(":noisy input"):  # the noisy input is scored, but is not a system to ship
        evaluation.write_text(json.dumps({"noisy input": {"overall": NOISY}}))
    assert ship.main([str(new), "--out", str(tmp_path / "never.pt"), "--name", "x", "--metrics", option]) == 2
    assert not (tmp_path / "never.pt").exists()
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error


def test_ship_refuses_to_write_over_its_own_checkpoint_or_a_malformed_metrics_option(files):
    tmp_path, _, new, evaluation = files
    before = new.read_bytes()
    for argv in ([str(new), "--out", str(new), "--name", "x"],
                 [str(new), "--out", str(tmp_path / "never.pt"), "--name", "x", "--metrics", str(evaluation)]):
        with pytest.raises(SystemExit) as refused:
            ship.main(argv)
        assert refused.value.code == 2
    assert new.read_bytes() == before and not (tmp_path / "never.pt").exists()
