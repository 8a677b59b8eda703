"""The band denoiser on the CPU in numpy: one hop live, a whole block offline.

Same maths as :meth:`BandDenoiser.step` (tested equal within float32 rounding):
weights copied once into contiguous float32 arrays, scipy's single-precision FFTs,
every frame's input projections in one product and only the GRU's recurrent product
frame by frame (shared with the STFT GRU's kernel). PyTorch spends more time
dispatching a hop's ~50 small operators than computing them.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.special import expit

from rtdenoise.models import State
from rtdenoise.models.bands import LOG_EPS, UNSET_LOG, BandDenoiser

from .band_attention import BandAttentionShift
from .dense import linear_layer
from .gru_kernel import gru_layer_weights, run_gru_layer
from .pitch_comb import band_correlation, comb, delayed_spectra
from .stft_step import HalfOverlapSTFTStep


class NumpyBandStep(HalfOverlapSTFTStep):
    """``BandDenoiser.step`` for 50 %-overlap frames, on chunks of any whole number of hops."""

    @staticmethod
    def suits(model: BandDenoiser, samples: int) -> bool:
        return model.frame == 2 * model.hop and samples % model.hop == 0

    def __init__(self, model: BandDenoiser, state: State, channels: int, samples: int) -> None:
        spec = model.spec
        weights = {name: value.detach().cpu().numpy().astype(np.float32) for name, value in model.state_dict().items()}
        self.shape = (channels, samples)
        self._hop = model.hop
        self._df = model.df_bins
        self._order = spec.df_order
        self._alpha = np.float32(model.alpha)
        self._floor_alpha = np.float32(model.floor_alpha)
        self._floor_rise = np.float32(model.floor_rise)
        self._bands = spec.bands
        self._noise_floor = spec.noise_floor
        self._floor = np.float32(spec.gain_floor)
        self._min_gain = np.float32(spec.min_gain)
        self._low_bands, self._low_exponent = model.low_bands, np.float32(spec.low_gain_exponent)
        self._window = model.window.cpu().numpy().astype(np.float32)
        bands = model.band_matrix.cpu().numpy().astype(np.float32)
        self._to_bands, self._to_bins = np.ascontiguousarray(bands.T), np.ascontiguousarray(bands)
        self._encode = linear_layer(weights, "encode")
        self._gain = linear_layer(weights, "gain_head")
        self._taps = linear_layer(weights, "df_head")
        self._layers = [gru_layer_weights(weights, layer, spec.hidden) for layer in range(spec.layers)]
        self._fine = FineGains(weights, model.fine_bins, self._to_bins) if model.fine_bins else None
        self._across = BandAttentionShift(weights, spec.bands, spec.across_heads) if spec.across_channels else None
        overlap = model.frame - model.hop
        self._history = np.zeros((channels, overlap), np.float32)
        self._tail = np.zeros((channels, overlap), np.float32)
        self._hidden = np.zeros((spec.layers, channels, spec.hidden), np.float32)
        self._means = np.zeros((channels, model.statistics * spec.bands), np.float32)
        self._power = np.zeros((channels, self._df), np.float32)
        self._past = np.zeros((channels, spec.df_order - 1, self._df, 2), np.float32)
        self._periods = spec.pitch_periods if spec.pitch else None
        self._comb_strength = spec.pitch_strength
        self._comb_head = ((np.ascontiguousarray(weights["comb_head.weight"].T),
                            weights["comb_head.bias"] + np.float32(model.comb_offset)) if spec.learned_comb else None)
        self._older = np.zeros((channels, model.pitch_history), np.float32)
        self._delayed: np.ndarray | None = None
        self._waiting = np.zeros((channels, spec.lookahead, 2 if spec.pitch else 1, model.bins, 2), np.float32)
        self.state: State = tuple(torch.from_numpy(a) for a in (self._history, self._tail, self._hidden, self._means,
                                                                 self._power, self._past, self._older, self._waiting))
        self.load_state(state)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        if self._periods:  # the frames one pitch period back, from the input before the frame history
            longer = np.concatenate([self._older, self._history, chunk], axis=1)
            self._delayed = delayed_spectra(longer, chunk.shape[1] // self._hop, self._hop, self._window,
                                            self._periods)
            kept = longer.shape[1] - self._hop
            self._older[...] = longer[:, kept - self._older.shape[1]: kept]
        return super().__call__(chunk)

    def _enhance(self, spectrum: np.ndarray) -> np.ndarray:
        channels, count, _ = spectrum.shape
        df, order = self._df, self._order
        seen, delayed = spectrum, self._delayed  # the frames the gains are decided from
        if self._waiting.shape[1]:  # look-ahead: the gains go to the frames waiting, then to all but the last few
            now = spectrum[:, :, None] if delayed is None else np.stack([spectrum, delayed], axis=2)
            queue = np.concatenate([self._waiting.view(np.complex64)[..., 0], now], axis=1)
            self._waiting[...] = queue[:, count:, ..., None].view(np.float32)
            spectrum = queue[:, :count, 0]
            delayed = queue[:, :count, 1] if delayed is not None else None
        low = spectrum[:, :, :df]  # the deep filter's input: the frames the gains are for, before the comb
        power = seen.real ** 2
        power += seen.imag ** 2
        band_energy = power @ self._to_bands
        log_bands = np.log10(band_energy + np.float32(LOG_EPS))
        if np.minimum.reduce(self._means, axis=None) <= UNSET_LOG:  # a fresh stream: its first frame starts them
            unset = self._means <= UNSET_LOG
            self._means[unset] = np.tile(log_bands[:, 0], self._means.shape[1] // self._bands)[unset]
        bands = self._bands
        band_means = self._running(log_bands, self._means[:, :bands])
        shape = log_bands - np.add.reduce(band_means, axis=-1, keepdims=True) / np.float32(band_means.shape[-1])
        shape *= np.float32(0.25)
        parts = [log_bands - band_means, shape]
        per_band = parts[:]  # what attention across the bands sees of each band
        if df:
            unset = self._power <= 0
            self._power[unset] = power[:, 0, :df][unset]
            low_power = self._running(power[:, :, :df], self._power)
            unit = (seen[:, :, :df] / np.sqrt(low_power + np.float32(LOG_EPS))).view(np.float32)  # re, im interleaved
            np.clip(unit, -10, 10, out=unit)
            parts.append(unit)
        if self._periods:
            energies = band_correlation(seen, self._delayed, self._to_bands, band_energy)
            parts.append(energies[2])
            per_band.append(energies[2])
        if self._noise_floor:  # the level above each band's tracked floor
            smoothed = self._running(log_bands, self._means[:, bands: 2 * bands], self._floor_alpha)
            floors = self._lowest(smoothed, self._means[:, 2 * bands:])
            floors -= log_bands
            floors *= np.float32(-0.5)
            parts.append(floors)
            per_band.append(floors)
        if self._fine is not None:
            fine = self._fine.features(power, log_bands, band_means)
            parts.append(fine.reshape(channels, count, -1))
        features = np.concatenate(parts, axis=-1)
        if self._periods and seen is not spectrum:  # the comb works on the frames the gains are for
            energies = band_correlation(spectrum, delayed, self._to_bands,
                                        (spectrum.real ** 2 + spectrum.imag ** 2) @ self._to_bands)
        weight, bias = self._encode
        x = features @ weight
        x += bias
        np.maximum(x, 0, out=x)
        for layer, weights in enumerate(self._layers):
            x = run_gru_layer(x, self._hidden[layer], weights)
        weight, bias = self._gain
        gains = x @ weight
        gains += bias
        if self._across is not None:
            gains += self._across(x, np.stack(per_band, axis=-1))
        expit(gains, out=gains)
        if self._floor:
            np.maximum(gains, self._floor, out=gains)
        if self._low_bands:
            lowest = gains[..., : self._low_bands]
            np.power(lowest, self._low_exponent, out=lowest)
        if self._min_gain:
            gains *= np.float32(1) - self._min_gain
            gains += self._min_gain
        if self._periods:
            strength = self._comb_strength
            if self._comb_head is not None:  # one strength per band, from the network
                weight, bias = self._comb_head
                strength = x @ weight
                strength += bias
                expit(strength, out=strength)
            spectrum = comb(spectrum, delayed, energies, gains, self._to_bins, strength)
        bin_gains = gains @ self._to_bins
        if self._fine is not None:
            self._fine.apply(bin_gains, fine, x)
        enhanced = spectrum * bin_gains
        if not df:  # a band-gain model only
            return enhanced
        weight, bias = self._taps
        taps = x @ weight
        taps += bias
        taps = taps.reshape(channels, count, order, df, 2).view(np.complex64)[..., 0]  # (C, k, order, df)
        history = np.concatenate([self._past.view(np.complex64)[..., 0], low], axis=1)  # (C, order-1+k, df)
        for lag in range(order):
            enhanced[:, :, :df] += taps[:, :, lag] * history[:, order - 1 - lag: order - 1 - lag + count]
        self._past[...] = history[:, history.shape[1] - (order - 1):][..., None].view(np.float32)
        return enhanced

    def _running(self, values: np.ndarray, start: np.ndarray, alpha: np.float32 | None = None) -> np.ndarray:
        """Exponential mean over the frames of ``values`` ``(C, k, n)`` from ``start`` ``(C, n)`` (advanced in place)."""
        out = np.empty_like(values)
        alpha = self._alpha if alpha is None else alpha
        rest = np.float32(1) - alpha
        for index in range(values.shape[1]):
            start *= alpha
            start += rest * values[:, index]
            out[:, index] = start
        return out

    def _lowest(self, values: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Floors tracked over the frames of ``values`` ``(C, k, n)`` from ``start`` ``(C, n)`` (advanced in place):
        f = min(f + rise, x)."""
        out = np.empty_like(values)
        for index in range(values.shape[1]):
            start += self._floor_rise
            np.minimum(start, values[:, index], out=start)
            out[:, index] = start
        return out


class FineGains:
    """The band model's fine path (``BandDenoiser.fine_features`` and ``fine_gains``) in numpy."""

    def __init__(self, weights: dict[str, np.ndarray], bins: int, to_bins: np.ndarray) -> None:
        self.bins = bins
        self._spread = np.ascontiguousarray(to_bins[:, :bins])
        local = weights["fine_local.weight"]                                  # (channels, 2, taps)
        self._taps = local.shape[2]
        self._local = (np.ascontiguousarray(local.reshape(local.shape[0], -1)), weights["fine_local.bias"][:, None])
        self._context = linear_layer(weights, "fine_context")
        self._per_bin = linear_layer(weights, "fine_bin_head")
        self._head = (np.ascontiguousarray(weights["fine_head.weight"][:, :, 0]), weights["fine_head.bias"])

    def features(self, power: np.ndarray, log_bands: np.ndarray, band_means: np.ndarray) -> np.ndarray:
        """``(C, k, 2, bins)``: each low bin's log energy against its band's and against the band's running mean."""
        log_bins = np.log10(power[..., : self.bins] + np.float32(LOG_EPS))
        fine = np.stack([log_bins - log_bands @ self._spread, log_bins - band_means @ self._spread], axis=2)
        fine *= np.float32(0.5)
        return np.clip(fine, -5, 5, out=fine)

    def apply(self, bin_gains: np.ndarray, fine: np.ndarray, x: np.ndarray) -> None:
        """Move the low bins of ``bin_gains`` ``(C, k, bins)`` in place, in the logit domain."""
        pad = self._taps // 2
        padded = np.pad(fine, ((0, 0), (0, 0), (0, 0), (pad, pad)))
        windows = np.stack([padded[..., tap: tap + self.bins] for tap in range(self._taps)], axis=3)
        windows = windows.reshape(*fine.shape[:2], -1, self.bins)            # (C, k, 2 * taps, bins), as torch's
        weight, bias = self._local
        hidden = weight @ windows
        hidden += bias
        weight, bias = self._context
        hidden += (x @ weight + bias)[..., None]
        np.maximum(hidden, 0, out=hidden)
        weight, bias = self._head
        shift = (weight @ hidden)[..., 0, :]
        shift += bias
        weight, bias = self._per_bin
        shift += x @ weight + bias
        low = np.clip(bin_gains[..., : self.bins], 1e-4, 1 - 1e-4)
        shift += np.log(low) - np.log1p(-low)
        bin_gains[..., : self.bins] = expit(shift)
