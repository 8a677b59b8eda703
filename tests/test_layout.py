"""The house's floor plan: packages grouped by job, one-way imports, no import cycles."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rtdenoise", "training", "models")
# what each rtdenoise sub-package must never import (the layers above it)
FORBIDDEN = {
    "rtdenoise.engine": ("rtdenoise.files", "rtdenoise.live", "rtdenoise.bench", "rtdenoise.app", "rtdenoise.cli"),
    "rtdenoise.kernels": ("rtdenoise.engine", "rtdenoise.files", "rtdenoise.live", "rtdenoise.bench", "rtdenoise.app",
                          "rtdenoise.cli"),
    "rtdenoise.portable": ("rtdenoise.engine", "rtdenoise.kernels", "rtdenoise.files", "rtdenoise.live",
                           "rtdenoise.bench", "rtdenoise.app", "rtdenoise.cli", "training"),
    "rtdenoise.files": ("rtdenoise.live", "rtdenoise.bench", "rtdenoise.app", "rtdenoise.cli"),
    "rtdenoise.live": ("rtdenoise.bench", "rtdenoise.app", "rtdenoise.cli"),
    "rtdenoise.bench": ("rtdenoise.live", "rtdenoise.app", "rtdenoise.cli"),
    "rtdenoise.app": ("rtdenoise.cli", "torch"),
    "rtdenoise.models": ("rtdenoise.engine", "rtdenoise.files", "rtdenoise.live", "rtdenoise.bench", "rtdenoise.app",
                         "rtdenoise.cli", "training"),
    # training's parts: where recordings come from, the audio mixed from them and the scores know nothing of the loop
    "training.recordings": ("training.mixing", "training.scoring", "training.fitting"),
    "training.mixing": ("training.recordings", "training.scoring", "training.fitting"),
    "training.scoring": ("training.recordings", "training.fitting"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "models":
        parts = ["rtdenoise"] + parts  # installed as rtdenoise.models
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function, as absolute names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    names = {module_name(p): p for p in files}
    return {name: {m for m in imports_of(path, name) if m in names and m != name} for name, path in names.items()}


def test_no_import_cycle_anywhere():
    edges = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not cycles, f"import cycles: {cycles}"


def test_each_layer_imports_only_what_lies_below_it():
    wrong = []
    for name, imported in graph().items():
        for layer, forbidden in FORBIDDEN.items():
            if name == layer or name.startswith(layer + "."):
                wrong += [f"{name} imports {m}" for m in imported if m.startswith(forbidden)]
    for path in (ROOT / "rtdenoise" / "app").rglob("*.py"):  # torch loads only when a session starts
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        wrong += [f"{path.name} imports torch at the top" for n in top
                  if "torch" in {a.name.split(".")[0] for a in n.names} | {(getattr(n, "module", "") or "").split(".")[0]}]
    assert not wrong, wrong


def test_the_top_level_is_small_and_every_package_says_its_job():
    for package in ("rtdenoise", "training"):   # training's top level: its steps, each a command
        top = [p.name for p in (ROOT / package).glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
        assert len(top) <= 8, top
    for init in [ROOT / "rtdenoise" / "__init__.py", ROOT / "training" / "__init__.py",
                 *(p / "__init__.py" for package in ("rtdenoise", "training") for p in (ROOT / package).iterdir()
                   if (p / "__init__.py").exists())]:
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and len(docstring) > 40, f"{init.relative_to(ROOT)} does not say what it is for"
    assert not (ROOT / "rtdenoise" / "commands_extra.py").exists()
