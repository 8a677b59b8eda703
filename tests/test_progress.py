"""The progress bar counts seconds of audio exactly: never past its total, full at the end."""
from __future__ import annotations

import io
import warnings

from rtdenoise.files.progress import ProgressBar


def test_the_bar_ends_full_and_never_passes_its_total(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm's "clamping frac to range [0, 1]" would fail here
        with ProgressBar(0.3, unit="s audio") as bar:
            for _ in range(3):
                bar.advance(0.1)  # 0.1 + 0.1 + 0.1 = 0.30000000000000004 > 0.3
            assert bar.bar.n == bar.bar.total == 0.3
            bar.advance(0.05)     # a rounding overshoot beyond the total
            assert bar.bar.n == 0.3
        with ProgressBar(5.004, unit="s audio") as bar:  # a file of 5.004 s in 1 s blocks: full at its end
            for block in (1.0, 1.0, 1.0, 1.0, 1.0, 0.004):
                bar.advance(block)
            assert bar.bar.n == bar.bar.total
    assert "-0" not in stream.getvalue() and "<-" not in stream.getvalue()  # no negative time left
