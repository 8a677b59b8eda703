"""What a run learns from: lab pairs in shuffled batches, or mixtures (or streams) made on the fly,
and the validation set.

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.
"""
from __future__ import annotations

import argparse
import random
from dataclasses import replace

import numpy as np
import torch

from training.mixing.augment import ChainConfig, RecordingChain
from training.dataset import MixConfig, Mixer, OnTheFlyDataset, load_corpus_split, load_pairs, random_split
from training.fitting.distributed import World, shard_indices
from training.mixing.stream_mix import StreamConfig, StreamMixer
from training.fitting.train_config import STREAM_PIECE_SECONDS, TrainConfig


def batches_from_pairs(pairs: list, batch: int, seed: int, epoch: int, world: World = World()):
    """Shuffled batches of lab pairs; under torchrun, this rank's shard of them (``batch`` per rank)."""
    if world.size > 1:
        order = shard_indices(len(pairs), world, seed, epoch)
    else:
        order = list(range(len(pairs)))
        random.Random(seed * 1000 + epoch).shuffle(order)
    for start in range(0, len(order), batch):
        chosen = [pairs[i] for i in order[start:start + batch]]
        length = min(p[0].shape[-1] for p in chosen)
        yield (torch.cat([p[0][..., :length] for p in chosen]), torch.cat([p[1][..., :length] for p in chosen]))


def training_data(config: TrainConfig, args: argparse.Namespace, world: World, say,
                  resumed_at: int = 0) -> tuple[list | None, list, object]:
    """``(training pairs or None, validation pairs, stream of mixed batches or None)``."""
    if args.data:
        pairs, _ = load_pairs(args.data)
        if args.val:
            train_pairs, val_pairs = pairs, load_pairs(args.val)[0]
        else:
            held_out = min(config.held_out, max(1, len(pairs) // 6))  # the lab: 50 of 300
            train_pairs, val_pairs = random_split(pairs, held_out, config.seed)
            say(f"{len(train_pairs)} training pairs, {len(val_pairs)} held out for testing", flush=True)
        stream = None
    else:
        chain = RecordingChain(ChainConfig(room_probability=args.room_probability, early_ms=args.early_ms,
                                           rir_bank=args.rooms)) if args.augment else None
        # streams are made of pieces of at most STREAM_PIECE_SECONDS, mixed at that length and cut
        mix_seconds = max(config.segment_seconds, STREAM_PIECE_SECONDS) if config.stream_seconds else \
            config.segment_seconds
        mix_config = MixConfig(seconds=mix_seconds)
        if args.augment:
            mix_config = MixConfig(seconds=mix_seconds, level_db=(-45.0, -12.0), balance_speakers=True,
                                   pitch_shift_probability=args.pitch_shift_probability,
                                   pitch_factor=(0.7, 0.95), raise_pitch_probability=args.raise_pitch_share,
                                   snr_db=(-5.0, args.snr_max),
                                   clean_probability=args.clean_probability,
                                   continuous_probability=args.continuous_probability,
                                   diphone_voice_share=args.diphone_voice_share,
                                   balance_noise_families=args.balance_noise_families)
        mixer = Mixer(load_corpus_split(args.corpus, "train"), mix_config, chain=chain)
        val_mixer = Mixer(load_corpus_split(args.corpus, args.val_split),
                          MixConfig(seconds=config.segment_seconds, pitch_shift_probability=0.0,
                                    silence_probability=0.0, balance_speakers=args.augment),
                          synthetic=False, chain=chain)
        rng = np.random.default_rng(12345)
        val_pairs = []
        for index in range(config.validation_pairs):
            noisy, clean, _ = val_mixer.mix(rng, snr_db=[-5.0, 0.0, 5.0, 10.0, 15.0][index % 5])
            val_pairs.append((torch.from_numpy(noisy)[None], torch.from_numpy(clean)[None]))
        if args.val:
            val_pairs = load_pairs(args.val)[0]
        source = mixer
        if config.stream_seconds:
            source = StreamMixer(mixer, StreamConfig(seconds=config.stream_seconds,
                                                     same_noise_probability=args.same_noise_probability))
            val_pairs = val_pairs + validation_streams(val_mixer, config)
        loader = torch.utils.data.DataLoader(OnTheFlyDataset(source, config.seed, rank=world.rank,
                                                             resumed_at=resumed_at),
                                             batch_size=config.batch,
                                             num_workers=args.workers,
                                             persistent_workers=args.workers > 0)
        stream = iter(loader)
        train_pairs = None
    return train_pairs, val_pairs, stream


def validation_streams(val_mixer: Mixer, config: TrainConfig) -> list:
    """Streams of changing validation pieces, as much audio in all as the fresh validation pairs:
    ``(noisy, clean, spans)`` entries for ``validate``."""
    pieces = Mixer(val_mixer.split, replace(val_mixer.config, seconds=STREAM_PIECE_SECONDS), synthetic=False,
                   chain=val_mixer.chain)
    seconds = 32.0
    count = max(1, round(config.validation_pairs * config.segment_seconds / seconds))
    mixer = StreamMixer(pieces, StreamConfig(seconds=seconds))
    rng = np.random.default_rng(54321)
    streams = []
    for _ in range(count):
        noisy, clean, meta = mixer.mix(rng)
        streams.append((torch.from_numpy(noisy)[None], torch.from_numpy(clean)[None], meta["spans"]))
    return streams
