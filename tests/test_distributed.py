"""Distributed training under torchrun (gloo on this CPU): ranks agree with one process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rtdenoise.models import load_checkpoint
from training import train
from training.fitting import train_steps
from training.dataset import Mixer, MixConfig, build_pairs, save_pairs
from training.fitting.distributed import World, finish_together, leave_world, wrap_for_training

ROOT = Path(__file__).resolve().parents[1]
CONFIG = train.TrainConfig(model="gru-small", loss="speech-stoi", tbptt_ms=250.0, grad_clip=1.0)


def _model_and_batch(fixture_pairs: list) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = train_steps.make_model("gru-small", None)
    noisy = torch.cat([p[0] for p in fixture_pairs])
    clean = torch.cat([p[1] for p in fixture_pairs])
    return model, noisy, clean


def _one_step(model, noisy, clean, world: World) -> None:
    trainer = wrap_for_training(model, train_steps.chunk_samples(model, CONFIG), world, torch.device("cpu"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_steps.train_step(trainer, model, noisy, clean, CONFIG, optimizer)


def _rank_step(rank: int, store: str, pairs: list, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    world = World(rank, 2)
    model, noisy, clean = _model_and_batch(pairs)
    half = noisy.shape[0] // 2
    rows = slice(rank * half, (rank + 1) * half)
    _one_step(model, noisy[rows], clean[rows], world)
    if rank == 0:
        torch.save(model.state_dict(), out)
    # As training does: no rank tears gloo down while the other is still in it (a lone teardown
    # aborted rank 1 once in CI with "terminate called without an active exception").
    finish_together(world)
    leave_world(world)


@pytest.fixture(scope="module")
def fixture_pairs(fixture_split):
    pairs, _ = build_pairs(Mixer(fixture_split, MixConfig(seconds=0.5, snr_db=(0, 5), silence_probability=0,
                                                          pitch_shift_probability=0)), 4, seed=11)
    return pairs


def test_one_step_on_two_ranks_equals_one_step_on_one_rank_with_twice_the_batch(tmp_path, fixture_pairs):
    out = tmp_path / "two_ranks.pt"
    mp.spawn(_rank_step, args=(str(tmp_path / "store"), fixture_pairs, str(out)), nprocs=2, join=True)
    model, noisy, clean = _model_and_batch(fixture_pairs)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _one_step(model, noisy, clean, World())
    two_ranks = torch.load(out, weights_only=True)
    moved = max((model.state_dict()[k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-4  # the step did something, so agreeing is not trivial
    for name, value in model.state_dict().items():
        torch.testing.assert_close(two_ranks[name], value, rtol=1e-5, atol=1e-6)


def test_torchrun_with_two_gloo_ranks_trains_and_resumes_on_one(tmp_path, fixture_split):
    pairs, _ = build_pairs(Mixer(fixture_split, MixConfig(seconds=0.5, snr_db=(0, 5))), 16, seed=3)
    data = save_pairs(pairs, tmp_path / "train.pt")
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    common = ["--model", "gru-small", "--data", str(data), "--out", str(out), "--batch", "2", "--loss", "l1",
              "--lr", "3e-3", "--seed", "1", "--quiet"]
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "training.train", *common, "--epochs", "4"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    said = [line for line in (run.stdout + run.stderr).splitlines()
            if any(word in line for word in ("Error", "error:", "what()", "terminate", "Traceback"))]
    assert run.returncode == 0, "\n".join(said[:20]) + "\n" + run.stdout[-1500:]
    assert "x 2 ranks" in run.stdout and run.stdout.count("epoch ") >= 4  # rank 0 alone reports
    history = torch.load(out.with_name("ddp.last.pt"), weights_only=True)["history"]
    assert len(history) == 4 and history[-1]["train_loss"] < history[0]["train_loss"]
    load_checkpoint(out)
    resumed = subprocess.run([sys.executable, "-m", "training.train", *common, "--epochs", "5", "--resume"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(torch.load(out.with_name("ddp.last.pt"), weights_only=True)["history"]) == 5
