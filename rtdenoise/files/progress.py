"""A progress bar on stderr (tqdm) that can be switched off."""
from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBar:
    """Counts a float total (seconds of audio, files, steps); silent when disabled."""

    def __init__(self, total: float, unit: str = "", enabled: bool = True) -> None:
        self.bar = tqdm(total=round(total, 2), unit=unit, disable=not enabled, file=sys.stderr,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} {unit} [{elapsed}<{remaining}]",
                        dynamic_ncols=True, leave=True)

    def describe(self, text: str) -> None:
        self.bar.set_description_str(text[:40])

    def advance(self, amount: float) -> None:
        self.bar.update(amount)

    def write(self, text: str) -> None:
        if self.bar.disable:
            return
        self.bar.write(text, file=sys.stderr)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
