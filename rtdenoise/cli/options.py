"""Options and errors shared by several sub-commands."""
from __future__ import annotations

import argparse

from rtdenoise.errors import finite_float


class UsageError(Exception):
    """Arguments that cannot work together; the message says what to do."""


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="shipped model name or checkpoint path (default: the best shipped)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if present)")
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                        help="who runs the network: torch (numpy kernels on the CPU, CUDA graphs on a GPU) or onnx "
                             "(onnxruntime on the CPU; a .onnx --model always runs there)")


def add_max_attenuation_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-attenuation", type=finite_float, default=None, metavar="DB",
                        help="remove at most DB of noise, keeping some of the room (e.g. 12; default: no limit)")
    parser.add_argument("--gate", type=finite_float, default=None, metavar="DBFS",
                        help="voice gate: silence where the cleaned voice stays below DBFS (e.g. -45), words kept "
                             "whole; adds 60 ms of latency (default: off)")
