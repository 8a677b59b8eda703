"""What the engine repaired in a stream (NaN, absurd levels, a broken state), in words for users."""
from __future__ import annotations


def safety_note(counters: dict) -> str:
    """`` (…)`` listing the engine's non-zero safety counters, or "" when it repaired nothing."""
    from rtdenoise.engine import INPUT_LIMIT

    parts = [f"{counters[key]} {words}" for key, words in (
        ("nonfinite_samples", "NaN/Inf samples replaced by silence"),
        ("clipped_samples", f"samples beyond ±{INPUT_LIMIT:g} clipped before the model"),
        ("limited_samples", "output samples held to the input's level"),
        ("state_resets", "model state resets")) if counters.get(key)]
    return f" ({'; '.join(parts)})" if parts else ""
