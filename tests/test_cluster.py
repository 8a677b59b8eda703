"""Archives on a Ray cluster: a local cluster of 2 workers writes what --jobs 1 writes."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtdenoise.engine import load_model
from rtdenoise.files.offline import denoise_file

DATA = Path(__file__).parent / "data"


def test_a_local_ray_cluster_cleans_a_folder_like_one_process_and_reports_a_failure(tmp_path):
    pytest.importorskip("ray")
    from rtdenoise.files.cluster import FileJob, denoise_on_ray

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("speech_noisy.wav", "speech_clean.wav", "noise_birds.wav", "speech_fullband.flac"):
        shutil.copy(DATA / name, folder / name)
    sources = sorted(folder.iterdir())
    (tmp_path / "blocker").write_text("a file where a folder should be")
    pairs = [(s, tmp_path / "ray" / s.name) for s in sources] + [(sources[0], tmp_path / "blocker" / "y.wav")]
    (tmp_path / "ray").mkdir()
    written, failures, seconds = [], [], []
    failed = denoise_on_ray(pairs, FileJob(None), None, on_file=lambda s, t, summary: written.append(t),
                            on_error=lambda s, error: failures.append(error), on_progress=seconds.append, workers=2)
    assert failed == 1 and len(failures) == 1 and "blocker" in failures[0]
    assert sorted(written) == sorted(t for _, t in pairs[:-1])
    total = sum(sf.info(str(s)).duration for s in sources)  # the failed file wrote nothing
    assert sum(seconds) == pytest.approx(total, abs=2.5)  # the bar counted the audio done on the workers
    model = load_model(None, "cpu")[0]
    for source, target in pairs[:-1]:
        alone = tmp_path / "one" / source.name
        alone.parent.mkdir(exist_ok=True)
        denoise_file(source, alone, model)
        np.testing.assert_array_equal(sf.read(str(target))[0], sf.read(str(alone))[0])
    assert not list((tmp_path / "ray").glob(".*"))  # no partial files left behind


def test_ray_missing_is_a_one_line_error_naming_the_extra(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from rtdenoise.cli import main; "
            f"sys.exit(main(['denoise', {str(DATA / 'speech_noisy.wav')!r}, '-o', {str(tmp_path / 'o.wav')!r}, "
            "'--ray']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and "rtdenoise[cluster]" in run.stderr
    assert not (tmp_path / "o.wav").exists()
