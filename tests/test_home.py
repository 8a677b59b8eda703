"""The test run keeps away from the user's home: settings, autostart entries and caches go elsewhere."""
from __future__ import annotations

import os
from pathlib import Path

from .conftest import USER_HOME


def test_the_suite_runs_with_a_private_home_and_xdg_folders():
    home = Path(os.environ["HOME"])
    assert USER_HOME and home != Path(USER_HOME) and home.name.startswith("rtdenoise-tests-home-")
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        assert Path(os.environ[variable]).is_relative_to(home), variable


def test_app_settings_and_autostart_entries_land_in_the_private_home():
    from rtdenoise.live import autostart

    assert autostart.autostart_dir().is_relative_to(Path(os.environ["HOME"]))
    from PySide6.QtCore import QCoreApplication, QSettings

    QCoreApplication.instance() or QCoreApplication([])
    from rtdenoise.app.settings import app_settings

    settings = app_settings()
    assert Path(settings.fileName()).is_relative_to(Path(os.environ["HOME"])), settings.fileName()
    assert isinstance(settings, QSettings)
