"""The package's layers: each subpackage imports only from its own layer and the ones below it."""
import ast
import importlib
import subprocess
import sys

import pytest

from conftest import REPO

PACKAGE = REPO / "src" / "specvit"
# bottom to top: a module may import from its own layer and every layer before it
LAYERS = ("runtime", "physics", "data", "models", "evaluation", "training", "studies", "reporting", "pipeline")


def layer_of(module: str) -> str | None:
    """'specvit.physics.spectrum' -> 'physics'; None for the package root and its resources."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def specvit_imports(path) -> set[str]:
    """Every specvit module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("specvit."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("specvit"):
            if node.module == "specvit":  # `from specvit import physics`
                found.update(f"specvit.{a.name}" for a in node.names)
            else:
                found.add(node.module)
    return found


def test_every_module_belongs_to_a_layer():
    modules = [p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE]
    assert modules
    assert {p.relative_to(PACKAGE).parts[0] for p in modules} == set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_a_higher_one(layer):
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    offending = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in specvit_imports(path):
            if layer_of(module) not in allowed:
                offending.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not offending, "\n".join(offending)


def test_the_check_sees_a_violation(tmp_path):
    """The scan above finds imports inside functions too (the workflow hides torch behind them)."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from specvit.reporting.tables import write_table\n")
    assert layer_of(next(iter(specvit_imports(path)))) == "reporting"


@pytest.mark.parametrize("layer", LAYERS)
def test_each_subpackage_imports(layer):
    assert importlib.import_module(f"specvit.{layer}").__doc__


def test_the_pipeline_layer_imports_without_torch():
    """The Snakefile imports specvit.pipeline when it loads the config; a dry run must not pay for torch."""
    code = ("import pkgutil, importlib, sys, specvit.pipeline as p\n"
            "for m in pkgutil.iter_modules(p.__path__): importlib.import_module(f'specvit.pipeline.{m.name}')\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
