"""The ``code`` param of every scripted rule: a hash of the specvit code its script runs.

Snakemake notices edits to a rule's script but not to the package modules the script imports.
Each rule with a ``script:`` therefore gets a param ``code``, a hash of the specvit modules its
script imports, directly or through other specvit modules (a static scan of import statements,
including those inside functions). Editing the forward model makes the data and everything
downstream stale; editing the plotting module only the figures. A module counts by its syntax
tree without docstrings, so editing comments, docstrings or layout makes nothing stale. The
forward model's line lists (``resources/*.csv``) count as its code, byte for byte.
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

# Modules whose data files are part of their code: the forward model reads its line lists.
RESOURCES_OF = {"spectrum.py": "resources/*.csv"}


def _code_digest(tree: ast.Module) -> str:
    """Digest of a module's syntax tree without its docstrings: what the code does, not how it
    is commented or laid out (line numbers are left out too). Strips the docstrings in place."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _scan_imports(tree: ast.Module) -> set[str]:
    """specvit module names imported anywhere in the tree (``from specvit import x`` counts as
    ``specvit.x`` too, since x may be a module)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("specvit"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("specvit"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


class CodeHasher:
    """Code hashes of workflow scripts over the specvit sources in ``package_dir`` (the checkout's
    ``src/specvit``, which need not be the imported copy). Each file is parsed once."""

    def __init__(self, package_dir):
        self.package_dir = Path(package_dir)
        self._parsed: dict[Path, tuple[set[str], str]] = {}

    def _parse(self, path: Path) -> tuple[set[str], str]:
        """(specvit imports, digest of the code) of the Python file at ``path``."""
        if path not in self._parsed:
            tree = ast.parse(path.read_text(), filename=str(path))
            imports = _scan_imports(tree)  # first: _code_digest strips the docstrings in place
            self._parsed[path] = (imports, _code_digest(tree))
        return self._parsed[path]

    def _module_file(self, name: str) -> Path | None:
        parts = name.split(".")[1:]
        if not parts:
            return self.package_dir / "__init__.py"
        rel = Path(*parts)
        for candidate in (self.package_dir / rel.with_suffix(".py"), self.package_dir / rel / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def files_of(self, script) -> set[Path]:
        """The specvit files that the script at ``script`` imports, transitively, and their resources."""
        todo, seen, files = list(self._parse(Path(script))[0]), set(), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            path = self._module_file(name)
            if path is not None:
                files.add(path)
                todo.extend(self._parse(path)[0])
        for module, pattern in RESOURCES_OF.items():
            if any(p.name == module for p in files):
                files.update(self.package_dir.glob(pattern))
        return files

    def code_hash(self, script) -> str:
        """Hash of the specvit code the script at ``script`` imports (16 hex digits)."""
        digest = hashlib.sha256()
        for path in sorted(self.files_of(script)):
            digest.update(str(path.relative_to(self.package_dir)).encode())
            digest.update(self._parse(path)[1].encode() if path.suffix == ".py" else path.read_bytes())
        return digest.hexdigest()[:16]


def script_path(rule) -> Path | None:
    """The script file of a Snakemake rule (its ``script:`` relative to the file that defines the rule)."""
    if not getattr(rule, "script", None):
        return None
    return Path(rule.basedir.get_path_or_uri(secret_free=True)) / rule.script


def add_code_params(rules, package_dir) -> dict[str, str]:
    """Give every rule that runs a script the param ``code``, the hash of its script's specvit code
    (read by the provenance sidecars as ``snakemake.params.code``). Returns {rule name: hash}."""
    hasher, out = CodeHasher(package_dir), {}
    for rule in rules:
        script = script_path(rule)
        if script is None:
            continue
        if "code" in rule.params.keys():
            raise ValueError(f"rule {rule.name}: its `code` param is derived from its script; do not set it by hand")
        out[rule.name] = hasher.code_hash(script)
        rule.set_params(code=out[rule.name])
    return out
