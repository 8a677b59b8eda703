"""A progress bar on stderr (tqdm) that can be switched off."""
from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBar:
    """Counts a float total (seconds of audio, files, steps); silent when disabled."""

    def __init__(self, total: float, unit: str = "", enabled: bool = True) -> None:
        self.total = float(total)
        self.done = 0.0
        self.bar = tqdm(total=self.total, unit=unit, disable=not enabled, file=sys.stderr,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} {unit} [{elapsed}<{remaining}]",
                        dynamic_ncols=True, leave=True)

    def describe(self, text: str) -> None:
        self.bar.set_description_str(text[:40])

    def advance(self, amount: float) -> None:
        """Count ``amount`` more; the bar never passes its total (block sums can overshoot it by rounding)."""
        self.done += amount
        shown = min(self.done, self.total)
        if self.done >= self.total * (1 - 1e-9):  # all of it: exactly full, not one rounding step short
            shown = self.total
        self.bar.update(shown - self.bar.n)

    def write(self, text: str) -> None:
        if self.bar.disable:
            return
        self.bar.write(text, file=sys.stderr)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
