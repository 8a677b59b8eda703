"""``rtdenoise gui``: build the QApplication and the window; automation for tests and docs."""
from __future__ import annotations

import argparse
import ctypes.util
import importlib.util
import os
import sys

# Qt's X11 (xcb) platform plugin needs these libraries, which a plain Debian 12 lacks; without them Qt
# aborts the process (exit 134) with a message that names only the first of them.
XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1"}


def missing_x11_packages(environ=os.environ) -> list[str]:
    """The Debian packages Qt's xcb platform needs and this machine lacks (none when Qt will not use X11)."""
    platform = environ.get("QT_QPA_PLATFORM", "")
    uses_x11 = platform == "xcb" or (not platform and environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"))
    if not uses_x11:
        return []
    return [package for library, package in XCB_LIBRARIES.items() if ctypes.util.find_library(library) is None]


def run_app(args: argparse.Namespace) -> int:
    try:
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
    except ImportError as error:
        raise RuntimeError(f"the desktop app needs PySide6 and pyqtgraph ({error}); "
                           "pip install 'rtdenoise[gui]'") from None
    from rtdenoise.engine import available_compute_devices, pick_device
    from rtdenoise.files.audio_io import probe
    from rtdenoise.models import default_model_name, list_pretrained, resolve_model_path

    from .controller import ONNX_COMPUTE
    from .main_window import MainWindow

    missing = missing_x11_packages()
    if missing:
        raise RuntimeError(f"the desktop app needs {', '.join(missing)} to open a window on X11: "
                           f"sudo apt-get install {' '.join(missing)}")
    if not args.quit_after >= 0:
        raise ValueError(f"--quit-after must be 0 (stay open) or more seconds, got {args.quit_after:g}")
    resolve_model_path(args.model)  # a missing model or file: one line now, not a silent fallback in the window
    device = pick_device(args.device)
    if args.input_file:
        probe(args.input_file)
    quiet_qt_noise()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from .settings import app_settings

    compute = available_compute_devices() + ([ONNX_COMPUTE] if importlib.util.find_spec("onnxruntime") else [])
    if args.backend == "onnx" and ONNX_COMPUTE not in compute:
        raise RuntimeError("--backend onnx needs onnxruntime: pip install onnxruntime")
    window = MainWindow(list_pretrained(), default_model_name(), compute, app_settings())
    if args.model:
        window.set_model(args.model)
    window.compute_box.setCurrentText(ONNX_COMPUTE if args.backend == "onnx" else device.type)
    if args.no_output:
        window.output_box.setCurrentIndex(0)
    if getattr(args, "view", None):
        window.view_box.setCurrentText(args.view.capitalize())
    window.show()
    if args.input_file:
        window.set_file(args.input_file)
        QTimer.singleShot(0, window.start)
    if args.quit_after:
        def finish() -> None:
            window.refresh_plots()
            window.refresh_stats()
            if args.screenshot:
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                window.grab().save(str(args.screenshot))
                print(f"screenshot saved to {args.screenshot}")
            window.close()
            app.quit()

        QTimer.singleShot(int(args.quit_after * 1000), finish)
    end_on_signals(window)
    return app.exec()


QT_NOISE = ("propagateSizeHints",)  # messages Qt's offscreen/xcb plugins print on every run, meaning nothing


def quiet_qt_noise() -> None:
    """Drop Qt's known harmless platform messages; every other message still reaches stderr."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(kind, context, message: str) -> None:
        if not any(noise in message for noise in QT_NOISE):
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def end_on_signals(window) -> None:
    """SIGTERM and SIGINT close the window as its close button does (recordings finished, devices closed).

    Python runs signal handlers only between bytecodes, and Qt's event loop is C++:
    a short timer lets the interpreter in to notice them.
    """
    import signal

    from PySide6.QtCore import QTimer

    def close(signum, frame) -> None:
        QTimer.singleShot(0, window.close)

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, close)
    heartbeat = QTimer(window)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(200)
