"""The settings of a training run, stored in each checkpoint as its recipe.

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.
"""
from __future__ import annotations

from dataclasses import dataclass

from training.fitting.losses import SISDR_WEIGHT, STOI_WEIGHT, LossSettings

@dataclass
class TrainConfig:
    model: str = "gru"
    loss: str = "mrstft"
    optimizer: str = "adam"
    lr: float = 1e-3
    batch: int = 16
    epochs: int = 30
    steps_per_epoch: int = 200       # on-the-fly mixing only
    segment_seconds: float = 4.0
    tbptt_ms: float = 1000.0
    held_out: int = 50
    seed: int = 0
    grad_clip: float = 5.0
    validation_pairs: int = 64
    suppression_weight: float = 2.0  # speech losses: what removed speech costs beyond residual noise
    stoi_weight: float = STOI_WEIGHT  # speech-stoi losses: what a unit of (1 - STOI) costs
    sisdr_weight: float = SISDR_WEIGHT  # speech losses: what a dB of SI-SDR is worth
    train_only: str = ""             # comma-separated parameter-name prefixes; empty: train everything
    lr_scale: str = ""               # "PREFIX=FACTOR,...": those parameters learn at FACTOR x lr (e.g. a new head)
    stream_seconds: float = 0.0      # > 0: train on streams this long whose conditions change (stream_mix.py)

    @property
    def loss_settings(self) -> LossSettings:
        return LossSettings(self.loss, self.suppression_weight, self.stoi_weight, self.sisdr_weight)


STREAM_PIECE_SECONDS = 6.0  # the longest piece of a training stream (StreamConfig's default)
