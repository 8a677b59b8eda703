"""The STOI rule a model must keep to ship (issue #29): above the noisy input in every SNR band, noise type
and voice, on fresh clips and in the stream, and overall in every hard stream. ``training.evaluate`` prints it
after its tables, with the groups inside the hard streams (smaller, not part of the rule) as a note."""
from __future__ import annotations

NOISY = "noisy input"
GROUPS = (("snr", "SNR band"), ("noise", "noise type"), ("voice", "voice"))
GROUPED_ROWS = ("fresh", "stream")  # rows whose every group counts; the hard streams count overall


def stoi_shortfalls(fresh: dict, streams: dict, hard_groups: bool = False) -> dict[str, list[str]]:
    """For each system (the noisy input aside): where its STOI is not above the noisy input's, as
    ``"ROW, GROUP-KIND GROUP: STOI ours <= noisy"``; fresh results and ``"NAME (ROW)"`` streams. The rule's
    places, or with ``hard_groups`` only the groups inside the hard streams."""
    rows = [("fresh", "")] + [(key[len(NOISY) + 2:-1], key[len(NOISY):]) for key in streams
                              if key.startswith(NOISY + " (")]
    found: dict[str, list[str]] = {}
    for name in fresh:
        if name == NOISY:
            continue
        lines = found.setdefault(name, [])
        for row, suffix in rows:
            ours, noisy = (fresh[name], fresh[NOISY]) if not suffix else \
                (streams.get(name + suffix), streams.get(NOISY + suffix))
            if ours is None or noisy is None:
                continue
            grouped = row in GROUPED_ROWS
            cells = [] if hard_groups else [("overall", "", ours["overall"], noisy["overall"])]
            if grouped != hard_groups:
                cells += [(title, group, ours[key][group], noisy[key][group])
                          for key, title in GROUPS for group in ours.get(key, {}) if group in noisy.get(key, {})]
            lines += [f"{row}, {title} {group}".rstrip() + f": STOI {mine['stoi']:.4f} <= {theirs['stoi']:.4f}"
                      for title, group, mine, theirs in cells if mine["stoi"] <= theirs["stoi"]]
    return found


def print_stoi_check(fresh: dict, streams: dict) -> None:
    """One line per system: whether it keeps the rule, where it does not, and (a note) hard-stream groups."""
    print("\nSTOI above the noisy input in every SNR band, noise type and voice (fresh and stream) and in every "
          "hard stream:")
    notes = stoi_shortfalls(fresh, streams, hard_groups=True)
    for name, lines in stoi_shortfalls(fresh, streams).items():
        print(f"  {name}: " + ("yes" if not lines else f"no, in {len(lines)}: " + "; ".join(lines))
              + (f" (inside the hard streams, not in the rule: {'; '.join(notes[name])})" if notes[name] else ""))
