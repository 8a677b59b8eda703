"""Band denoiser: ERB band gains plus a short causal deep filter, from level-invariant features.

The design follows what generalises in RNNoise and DeepFilterNet, at a few hundred
thousand parameters:

* STFT with sqrt-Hann frames of 20 ms, 10 ms apart, at any sample rate (16 kHz:
  320/160; 48 kHz: 960/480), so the same design covers fullband audio.
* Features that ignore the input level and the microphone's colouring: log energies
  of ERB-spaced bands minus their running (exponential) mean, the band shape relative
  to the frame's mean level, and the low bins' complex spectrum divided by their
  running magnitude.
* A GRU carries the memory from frame to frame (and chunk to chunk).
* Outputs: one gain per band, spread smoothly over its bins, and for the lowest
  bins a deep filter: complex taps over the current and previous frames, added to
  the gained spectrum (it starts at zero, so a fresh model is a band-gain model).

Latency is ``frame - hop`` samples (10 ms) plus ``lookahead`` hops: with look-ahead the gains
of a frame are decided from the features of the frames after it too (the GRU's output for
frame t is applied to frame t - lookahead); the deep filter looks only backwards.
With ``pitch`` on, RNNoise's pitch comb filter (models/pitch.py) cleans between the
harmonics before the gains, and each band's pitch correlation is a feature. With ``noise_floor``
on, each band's level above its noise floor is one more: the floor follows the minimum of the
band's smoothed log energy and rises slowly (minimum statistics), so steady noise shows as a
level near its floor whatever the speech does. With ``low_gain_exponent`` above 1, the gains of the
bands under ``low_exponent_hz`` (150 Hz: below most voices' pitch) are raised to that power, so
rumble and hum there are removed more deeply than the network alone would. With ``fine_hz`` set,
the bins below it (50 Hz apart at 16 kHz) get a gain of their own: the band gain, spread over the
bins, moved in the logit domain by a small network that looks at each bin's level against its band
(harmonics stand out) and against its running mean, across a few neighbouring bins, with the GRU's
output as context; it starts at zero, so a grown model begins as the band model it grew from.
With ``across_channels`` set, attention across the bands (models/across.py) moves each band's gain in the
logit domain: every band is a token made of its own features and its share of the GRU's output, so
each band's gain can follow what the other bands show in the same frame (also zero at the start).

State = (input history, overlap-add tail, GRU hidden, band means (and, with noise_floor, the
smoothed band energies and floors after them), low-bin magnitudes,
previous low-bin spectra, older input for the pitch search, the spectra of the frames
waiting for their gains (look-ahead): the frame's and, for pitch models, its delayed frame's).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .across import BandAttention
from .base import State, StreamingModel
from .dft import FrameDFT
from .pitch import band_correlation, comb, delayed_frames, pitch_periods

LOG_EPS = 1e-10
UNSET_LOG = -100.0  # a running mean not started yet (log10 of any real energy is above log10(LOG_EPS) = -10):
                    # the stream's first frame starts it, so the features are level-invariant from the start


@dataclass
class BandSpec:
    sample_rate: int = 16000
    frame_ms: float = 20.0
    hop_ms: float = 10.0
    bands: int = 32            # ERB bands from 0 Hz to Nyquist
    hidden: int = 128
    layers: int = 2
    df_hz: float = 3200.0      # the deep filter covers the bins below this
    df_order: int = 3          # current + 2 previous frames
    norm_seconds: float = 1.0  # time constant of the running normalisation
    gain_floor: float = 0.0    # no band is attenuated below this (applied at inference and in training)
    min_gain: float = 0.0      # gains g become min_gain + (1 - min_gain) g: at most -20 log10(min_gain) dB removed,
                               # exactly the engine's attenuation limit for a model without a deep filter
    pitch: bool = False        # RNNoise's pitch comb filter before the gains, and each band's pitch correlation
                               # as a feature (models/pitch.py)
    pitch_strength: float = 1.0  # scales the comb's RNNoise strength (0: correlations as features only)
    pitch_min_hz: float = 62.5
    pitch_max_hz: float = 800.0
    lookahead: int = 0         # frames the gains may look ahead: each adds one hop of latency
    learned_comb: bool = False  # the network sets each band's comb strength (PercepNet's r_b), starting at
                                # pitch_strength (its head starts at zero)
    noise_floor: bool = False   # each band's level above its tracked noise floor as features (minimum statistics)
    floor_smooth_ms: float = 30.0   # the floor tracks the band energies smoothed over this time constant ...
    floor_rise_db: float = 5.0      # ... and rises at most this many dB per second (it falls at once)
    low_gain_exponent: float = 1.0  # the gains of the bands centred below low_exponent_hz are raised to this
    low_exponent_hz: float = 150.0  # power (>= 1): rumble and hum under the voice's pitch removed more deeply
    high_band_exponent: float = 0.8  # at 32 kHz and up the engine drives 8-24 kHz with the top octave's gain
                                     # raised to this (0..1; lower keeps more of speech's high band)
    fine_hz: float = 0.0        # bins below this get their own gain correction (0: band gains only)
    fine_channels: int = 16     # width of the fine path's convolution across the low bins
    across_channels: int = 0    # attention across the bands, each band a token this wide, moves the band gains
                                # (0: off; models/across.py)
    across_heads: int = 2

    def __post_init__(self) -> None:
        frame, hop = self.frame, self.hop
        if hop < 1 or frame < hop or self.bands < 2 or self.hidden < 1 or self.layers < 1 or self.df_order < 1 \
                or not 0 <= self.gain_floor < 1 or not 0 <= self.min_gain < 1 or self.df_hz < 0 \
                or self.norm_seconds <= 0 or not 0 < self.pitch_min_hz < self.pitch_max_hz \
                or not 0 <= self.pitch_strength <= 1 or not 0 <= self.lookahead <= 2 \
                or self.learned_comb and not self.pitch or self.floor_smooth_ms <= 0 or self.floor_rise_db <= 0 \
                or not 1 <= self.low_gain_exponent <= 8 or self.low_exponent_hz < 0 \
                or not 0 < self.high_band_exponent <= 1 or self.fine_hz < 0 or self.fine_channels < 1 \
                or self.across_channels < 0 or self.across_heads < 1 or self.across_channels % self.across_heads:
            raise ValueError(f"invalid band-model spec {self}")

    @property
    def frame(self) -> int:
        return round(self.sample_rate * self.frame_ms / 1000)

    @property
    def hop(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def pitch_periods(self) -> tuple[int, int]:
        """The shortest and longest pitch period searched, in samples."""
        return round(self.sample_rate / self.pitch_max_hz), round(self.sample_rate / self.pitch_min_hz)


def erb_band_matrix(bins: int, sample_rate: int, bands: int) -> Tensor:
    """``(bands, bins)`` triangular weights on the ERB scale; each bin's weights sum to 1."""
    def erb(f: Tensor) -> Tensor:
        return 21.4 * torch.log10(1 + 0.00437 * f)

    freqs = torch.linspace(0, sample_rate / 2, bins, dtype=torch.float64)
    # the lowest bands would be narrower than a bin: space the centres so each holds at least one bin
    centres_erb = torch.linspace(0, float(erb(torch.tensor(sample_rate / 2.0))), bands, dtype=torch.float64)
    centres = (10 ** (centres_erb / 21.4) - 1) / 0.00437
    spacing = sample_rate / 2 / (bins - 1)
    for index in range(1, bands):
        centres[index] = max(centres[index], centres[index - 1] + spacing)
    centres = centres * (sample_rate / 2) / centres[-1]
    weights = torch.zeros(bands, bins, dtype=torch.float64)
    for index in range(bands):
        left = centres[index - 1] if index > 0 else centres[0] - 1.0
        right = centres[index + 1] if index < bands - 1 else centres[-1] + 1.0
        rising = (freqs - left) / (centres[index] - left)
        falling = (right - freqs) / (right - centres[index])
        weights[index] = torch.clamp(torch.minimum(rising, falling), min=0)
    weights = weights / weights.sum(0, keepdim=True).clamp_min(1e-12)
    return weights.float()


def running_floor(values: Tensor, start: Tensor, rise: float) -> Tensor:
    """Minimum tracking along dim 1 of ``values`` ``(B, T, C)`` from ``start`` ``(B, C)``: ``(B, T, C)``.

    f_t = min(f_{t-1} + rise, x_t), for all t at once: f_t = rise t + min(start + rise, min_{s<=t} (x_s - rise s)).
    """
    if values.shape[1] == 1:  # one frame (live hops, the ONNX export): the same without a cumulative minimum
        return torch.minimum(values, (start + rise)[:, None, :])
    ramp = rise * torch.arange(values.shape[1], device=values.device, dtype=values.dtype)[None, :, None]
    lowest = torch.cummin(values - ramp, dim=1).values
    return ramp + torch.minimum(lowest, (start + rise)[:, None, :])


def running_mean(values: Tensor, start: Tensor, alpha: float) -> Tensor:
    """Exponential mean along dim 1 of ``values`` ``(B, T, C)`` from ``start`` ``(B, C)``: ``(B, T, C)``.

    m_t = alpha m_{t-1} + (1 - alpha) x_t, computed for all t at once (T is at most a few hundred).
    """
    steps = values.shape[1]
    if steps == 1:  # one frame (live hops, the ONNX export)
        return (alpha * start + (1 - alpha) * values[:, 0])[:, None]
    t = torch.arange(steps, device=values.device, dtype=values.dtype)
    lags = t[:, None] - t[None, :]
    weights = torch.where(lags >= 0, (1 - alpha) * alpha ** lags.clamp_min(0), torch.zeros_like(lags))
    decay = alpha ** (t + 1)
    return torch.einsum("ts,bsc->btc", weights, values) + decay[None, :, None] * start[:, None, :]


class BandDenoiser(StreamingModel):
    """ERB band gains + low-bin deep filter; see the module docstring."""

    arch = "bands"
    keeps_initial = ("fine_local.", "fine_context.", "across.")  # new paths' inner layers: their output layers are zero

    def __init__(self, spec: BandSpec | None = None) -> None:
        super().__init__()
        self.spec = spec = spec or BandSpec()
        self.sample_rate = spec.sample_rate
        self.hop = spec.hop
        self.frame = spec.frame
        self.latency_samples = spec.frame - spec.hop + spec.lookahead * spec.hop
        self.high_band_exponent = spec.high_band_exponent  # read by the engine's high band (fullband streams)
        self.bins = spec.frame // 2 + 1
        self.dft: FrameDFT | None = None  # use_matrix_dft: FFTs as matrix products (the ONNX export)
        self.df_bins = min(self.bins, int(math.ceil(spec.df_hz / (spec.sample_rate / spec.frame))))
        self.alpha = math.exp(-spec.hop / (spec.sample_rate * spec.norm_seconds))
        self.floor_alpha = math.exp(-spec.hop_ms / spec.floor_smooth_ms)
        self.floor_rise = spec.floor_rise_db / 10 * spec.hop_ms / 1000  # log10 energy per frame
        self.statistics = 3 if spec.noise_floor else 1  # band means (+ smoothed energies and floors)
        self.register_buffer("window", torch.hann_window(spec.frame, periodic=True).sqrt(), persistent=False)
        self.register_buffer("band_matrix", erb_band_matrix(self.bins, spec.sample_rate, spec.bands),
                             persistent=False)
        centres_hz = self.band_matrix.argmax(1) * (spec.sample_rate / spec.frame)  # the bands run from low to high
        self.low_bands = int((centres_hz < spec.low_exponent_hz).sum()) if spec.low_gain_exponent != 1 else 0
        self.pitch_history = spec.pitch_periods[1] if spec.pitch else 0
        self.fine_bins = min(self.bins, int(math.ceil(spec.fine_hz / (spec.sample_rate / spec.frame))))
        features = 2 * spec.bands + 2 * self.df_bins + (spec.bands if spec.pitch else 0) \
            + (spec.bands if spec.noise_floor else 0) + 2 * self.fine_bins
        self.encode = nn.Linear(features, spec.hidden)
        self.gru = nn.GRU(spec.hidden, spec.hidden, spec.layers, batch_first=True)
        self.gain_head = nn.Linear(spec.hidden, spec.bands)
        nn.init.normal_(self.gain_head.weight, std=0.01)
        nn.init.constant_(self.gain_head.bias, 2.0)  # sigmoid(2) = 0.88: a near pass-through start
        with warnings.catch_warnings():  # a band-gain model's head is empty: torch warns that its init is a no-op
            warnings.simplefilter("ignore", UserWarning)
            self.df_head = nn.Linear(spec.hidden, self.df_bins * spec.df_order * 2)
        nn.init.zeros_(self.df_head.weight)
        nn.init.zeros_(self.df_head.bias)
        if spec.learned_comb:  # (a pitch model: the spec says so)
            self.comb_head = nn.Linear(spec.hidden, spec.bands)
            nn.init.zeros_(self.comb_head.weight)
            nn.init.zeros_(self.comb_head.bias)
            strength = min(max(spec.pitch_strength, 1e-3), 1 - 1e-3)
            self.comb_offset = math.log(strength / (1 - strength))  # sigmoid(head + offset) = pitch_strength at the start
        if self.fine_bins:
            self.fine_local = nn.Conv1d(2, spec.fine_channels, 5, padding=2)  # each bin and two neighbours a side
            self.fine_context = nn.Linear(spec.hidden, spec.fine_channels)
            self.fine_bin_head = nn.Linear(spec.hidden, self.fine_bins)     # a per-bin shift from the GRU alone
            self.fine_head = nn.Conv1d(spec.fine_channels, 1, 1)
            for layer in (self.fine_bin_head, self.fine_head):  # zero: the band gains unchanged at the start
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        if spec.across_channels:
            band_inputs = 2 + int(spec.pitch) + int(spec.noise_floor)  # each band's own features (enhance)
            self.across = BandAttention(spec.hidden, spec.bands, band_inputs, spec.across_channels, spec.across_heads)
            self.across_head = nn.Linear(spec.across_channels, 1)
            nn.init.zeros_(self.across_head.weight)  # zero: the band gains unchanged at the start
            nn.init.zeros_(self.across_head.bias)

    def spec_dict(self) -> dict:
        return asdict(self.spec)

    def feature_blocks(self) -> list[tuple[str, int]]:
        """The input layer's features in order, as (name, width): how ``enhance`` concatenates them."""
        spec = self.spec
        blocks = [("level", spec.bands), ("shape", spec.bands), ("low_spectrum", 2 * self.df_bins),
                  ("pitch", spec.bands if spec.pitch else 0), ("above_floor", spec.bands if spec.noise_floor else 0),
                  ("fine", 2 * self.fine_bins)]
        return [(name, width) for name, width in blocks if width]

    def use_matrix_dft(self) -> None:
        self.dft = FrameDFT(self.frame).to(self.window.device)

    def _rfft(self, frames: Tensor) -> Tensor:
        return torch.fft.rfft(frames) if self.dft is None else self.dft.rfft(frames)

    def _irfft(self, spectrum: Tensor) -> Tensor:
        return torch.fft.irfft(spectrum, n=self.frame) if self.dft is None else self.dft.irfft(spectrum)

    def init_state(self, batch: int, device: torch.device | str | None = None) -> State:
        device = device if device is not None else self._device()
        overlap = self.frame - self.hop
        spec = self.spec
        zeros = lambda *shape: torch.zeros(*shape, device=device)  # noqa: E731
        return (
            zeros(batch, overlap),
            zeros(batch, overlap),
            zeros(spec.layers, batch, spec.hidden),
            torch.full((batch, self.statistics * spec.bands), UNSET_LOG, device=device),  # running log10 band
                                                                # energies (+ smoothed ones and floors: noise_floor)
            zeros(batch, self.df_bins),                                  # running low-bin power (0: unset)
            zeros(batch, spec.df_order - 1, self.df_bins, 2),           # previous low-bin spectra
            zeros(batch, self.pitch_history),                           # input before the frame history (pitch)
            zeros(batch, spec.lookahead, 2 if spec.pitch else 1, self.bins, 2),   # frames waiting (look-ahead)
        )

    def state_names(self) -> tuple[str, ...]:
        return ("input_history", "overlap_tail", "gru_hidden", "band_statistics", "low_bin_power", "low_bin_past",
                "pitch_history", "lookahead_frames")

    def memory_only(self, state: State) -> State:
        history, tail, hidden, means, power, past, older, waiting = state
        return (torch.zeros_like(history), torch.zeros_like(tail), hidden, means, power, torch.zeros_like(past),
                torch.zeros_like(older), torch.zeros_like(waiting))

    def with_memory_of(self, state: State, earlier: State) -> State:
        history, tail, _, _, _, past, older, waiting = state
        return history, tail, earlier[2], earlier[3], earlier[4], past, older, waiting

    def step(self, chunk: Tensor, state: State) -> tuple[Tensor, State]:
        history, tail, hidden, means, power, past, older, waiting = state
        batch, length = chunk.shape
        count = length // self.hop
        signal = torch.cat([history, chunk], dim=-1)
        frames = signal.unfold(-1, self.frame, self.hop) * self.window   # (B, k, frame)
        spectrum = self._rfft(frames)                                      # (B, k, bins)
        delayed = None
        if self.spec.pitch:
            longer = torch.cat([older, signal], dim=-1)
            delayed = self._rfft(self.pitch_frames(longer, count) * self.window)
            kept = longer.shape[1] - (self.frame - self.hop)  # the rest is the next call's frame history
            older = longer[:, kept - self.pitch_history: kept]
        if self.spec.lookahead:  # the frames that get this call's gains: the waiting ones, then all but the last few
            ahead = spectrum, delayed
            now = torch.stack([torch.view_as_real(x) for x in ahead if x is not None], dim=2)  # (B, k, 1|2, bins, 2)
            queue = torch.cat([waiting, now], dim=1)  # queued as real pairs (the ONNX export has no complex select)
            waiting = queue[:, count:]
            spectrum = torch.view_as_complex(queue[:, :count, 0].contiguous())
            delayed = torch.view_as_complex(queue[:, :count, 1].contiguous()) if delayed is not None else None
        else:
            ahead = None
        enhanced, (hidden, means, power, past) = self.enhance(spectrum, (hidden, means, power, past), delayed, ahead)
        time_frames = self._irfft(enhanced) * self.window
        total = (count - 1) * self.hop + self.frame
        summed = F.fold(time_frames.transpose(1, 2), output_size=(1, total), kernel_size=(1, self.frame),
                        stride=(1, self.hop)).reshape(batch, total)
        overlap = self.frame - self.hop
        summed = torch.cat([summed[:, :overlap] + tail, summed[:, overlap:]], dim=-1)
        return summed[:, :length], (signal[:, length:], summed[:, length:], hidden, means, power, past, older, waiting)

    @torch.no_grad()
    def pitch_frames(self, longer: Tensor, count: int) -> Tensor:
        """``(B, k, frame)``: each frame one pitch period earlier; ``longer`` = pitch history + frame history + chunk."""
        shortest, longest = self.spec.pitch_periods
        periods = pitch_periods(longer, count, self.hop, self.frame, shortest, longest, direct=self.dft is not None)
        return delayed_frames(longer, periods, self.hop, self.frame, longest)

    def enhance(self, spectrum: Tensor, memory: State, delayed: Tensor | None = None,
                ahead: tuple[Tensor, Tensor | None] | None = None) -> tuple[Tensor, State]:
        """Enhanced spectrum of ``spectrum`` ``(B, k, bins)`` complex and the new recurrent memory;
        ``delayed``: the spectra of the frames one pitch period earlier (pitch models only);
        ``ahead``: the (spectrum, delayed) of the frames the gains are decided from, ``lookahead``
        frames later (default: the frames themselves)."""
        hidden, means, power, past = memory
        spec = self.spec
        seen, seen_delayed = ahead if ahead is not None else (spectrum, delayed)
        magnitude2 = torch.view_as_real(seen).square().sum(-1)                            # (B, k, bins)
        band_energy = magnitude2 @ self.band_matrix.T                                     # (B, k, bands)
        log_bands = torch.log10(band_energy + LOG_EPS)
        means = torch.where(means <= UNSET_LOG, log_bands[:, 0].repeat(1, self.statistics), means)
        power = torch.where(power <= 0, magnitude2[:, 0, : self.df_bins], power)
        means, *floor_start = means.split(spec.bands, dim=-1)
        band_means = running_mean(log_bands, means, self.alpha)
        level = log_bands - band_means                                                    # vs its own past
        shape = log_bands - band_means.mean(-1, keepdim=True)                             # vs the mean level
        per_band = [level, 0.25 * shape]  # each band's own features (what attention across the bands sees)
        if self.df_bins:
            low_power = running_mean(magnitude2[..., : self.df_bins], power, self.alpha)
            unit = torch.view_as_real(seen[..., : self.df_bins] / torch.sqrt(low_power + LOG_EPS)).flatten(-2)
            features = torch.cat([*per_band, unit.clamp(-10, 10)], dim=-1)               # unit: (B, k, 2*df_bins)
        else:
            features = torch.cat(per_band, dim=-1)
        if delayed is not None:
            energies = band_correlation(seen, seen_delayed, self.band_matrix, band_energy)
            features = torch.cat([features, energies[2]], dim=-1)
            per_band.append(energies[2])
            if ahead is not None:  # the comb works on the frames the gains are for
                energies = band_correlation(spectrum, delayed, self.band_matrix)
        statistics = band_means
        if floor_start:  # the level above the noise floor, from the smoothed energies' running minimum
            smoothed = running_mean(log_bands, floor_start[0], self.floor_alpha)
            floors = running_floor(smoothed, floor_start[1], self.floor_rise)
            above = 0.5 * (log_bands - floors)
            features = torch.cat([features, above], dim=-1)
            per_band.append(above)
            statistics = torch.cat([band_means, smoothed, floors], dim=-1)
        if self.fine_bins:
            fine = self.fine_features(magnitude2, log_bands, band_means)                 # (B, k, 2, fine)
            features = torch.cat([features, fine.flatten(-2)], dim=-1)
        x = torch.relu(self.encode(features))
        x, hidden = self._gru(x, hidden)
        logits = self.gain_head(x)
        if spec.across_channels:
            logits = logits + self.across_head(self.across(x, torch.stack(per_band, dim=-1))).squeeze(-1)
        band_gains = torch.sigmoid(logits)
        if spec.gain_floor:
            band_gains = band_gains.clamp_min(spec.gain_floor)
        if self.low_bands:
            low = self.low_bands
            band_gains = torch.cat([band_gains[..., :low] ** spec.low_gain_exponent, band_gains[..., low:]], dim=-1)
        if spec.min_gain:
            band_gains = spec.min_gain + (1.0 - spec.min_gain) * band_gains
        gains = band_gains @ self.band_matrix                                             # (B, k, bins)
        if self.fine_bins:
            gains = self.fine_gains(gains, fine, x)
        if delayed is not None:
            strength = torch.sigmoid(self.comb_head(x) + self.comb_offset) if spec.learned_comb else spec.pitch_strength
            enhanced = comb(spectrum, delayed, energies, band_gains, self.band_matrix, strength) * gains
        else:
            enhanced = spectrum * gains
        if not self.df_bins:  # a band-gain model only (df_hz = 0)
            return enhanced, (hidden, statistics[:, -1], power, past)
        taps = self.df_head(x).reshape(*x.shape[:2], spec.df_order, self.df_bins, 2)
        taps = torch.view_as_complex(taps.contiguous())                                   # (B, k, order, df)
        low = spectrum[..., : self.df_bins]
        history = torch.cat([torch.view_as_complex(past.contiguous()), low], dim=1)      # (B, order-1+k, df)
        count = spectrum.shape[1]
        filtered = sum(taps[:, :, lag] * history[:, spec.df_order - 1 - lag: spec.df_order - 1 - lag + count]
                       for lag in range(spec.df_order))
        enhanced = torch.cat([enhanced[..., : self.df_bins] + filtered, enhanced[..., self.df_bins:]], dim=-1)
        new_past = torch.view_as_real(history[:, history.shape[1] - (spec.df_order - 1):])
        return enhanced, (hidden, statistics[:, -1], low_power[:, -1], new_past)

    def fine_features(self, magnitude2: Tensor, log_bands: Tensor, band_means: Tensor) -> Tensor:
        """``(B, k, 2, fine_bins)``: each low bin's log energy against its band's (harmonics stand out) and
        against the band's running mean (how far above its recent level), both level-invariant."""
        spread = self.band_matrix[:, : self.fine_bins]
        log_bins = torch.log10(magnitude2[..., : self.fine_bins] + LOG_EPS)
        peaks = log_bins - log_bands @ spread
        levels = log_bins - band_means @ spread
        return (0.5 * torch.stack([peaks, levels], dim=2)).clamp(-5, 5)

    def fine_gains(self, gains: Tensor, fine: Tensor, x: Tensor) -> Tensor:
        """``gains`` ``(B, k, bins)`` with the low bins' gains moved (in the logit domain) by the fine path."""
        batch, count, _, bins = fine.shape
        local = self.fine_local(fine.reshape(batch * count, 2, bins)).reshape(batch, count, -1, bins)
        hidden = torch.relu(local + self.fine_context(x)[..., None])
        shift = self.fine_head(hidden.reshape(batch * count, -1, bins)).reshape(batch, count, bins)
        shift = shift + self.fine_bin_head(x)
        low = gains[..., :bins].clamp(1e-4, 1 - 1e-4)
        low = torch.sigmoid(torch.log(low) - torch.log1p(-low) + shift)
        return torch.cat([low, gains[..., bins:]], dim=-1)

    def _gru(self, x: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """nn.GRU, minus its per-call wrapper cost when not training: same kernel."""
        if self.training or torch.is_grad_enabled():
            return self.gru(x, hidden)
        gru = self.gru
        return torch.gru(x, hidden, gru._flat_weights, gru.bias, gru.num_layers, 0.0, False, False, True)
