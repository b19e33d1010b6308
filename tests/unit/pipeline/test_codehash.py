"""The `code` param of a scripted rule: a hash of the specvit code its script imports, transitively;
code edits change it, comments, docstrings and layout do not."""
import types

import pytest
from snakemake.iocontainers import Params

from conftest import REPO
from specvit.pipeline.codehash import CodeHasher, add_code_params, script_path

MODULES = {
    "__init__.py": "",
    "a.py": '"""Module a."""\n\ndef f():\n    from specvit.b import g  # imported inside a function\n    return g()\n',
    "b.py": '"""Module b."""\n\ndef g():\n    """Docstring of g."""\n    return 1\n',
    "unused.py": "X = 1\n",
    "physics/__init__.py": "",
    "physics/spectrum.py": "LINES = 'resources/lines.csv'\n",
    "resources/lines.csv": "wave,strength\n8542.09,1.0\n",
}


@pytest.fixture
def tree(tmp_path):
    package = tmp_path / "src" / "specvit"
    for name, text in MODULES.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    scripts = tmp_path / "workflow" / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "uses_a.py").write_text("from specvit.a import f\nprint(f())\n")
    (scripts / "uses_forward.py").write_text("import specvit.physics.spectrum\n")
    return package, scripts


def hash_of(package, script):
    return CodeHasher(package).code_hash(script)


def test_the_files_of_a_script_are_its_transitive_specvit_imports(tree):
    package, scripts = tree
    files = {p.relative_to(package).as_posix() for p in CodeHasher(package).files_of(scripts / "uses_a.py")}
    assert files == {"a.py", "b.py"}
    files = {p.relative_to(package).as_posix() for p in CodeHasher(package).files_of(scripts / "uses_forward.py")}
    assert files == {"physics/spectrum.py", "resources/lines.csv"}  # the line list counts as the model's code


def test_code_edits_change_the_hash_and_comments_docstrings_layout_do_not(tree):
    package, scripts = tree
    before = hash_of(package, scripts / "uses_a.py")
    b = package / "b.py"
    b.write_text(b.read_text().replace("Docstring of g.", "Reworded.").replace("def g", "# a comment\n\n\ndef g"))
    (package / "unused.py").write_text("X = 2\n")
    assert hash_of(package, scripts / "uses_a.py") == before
    b.write_text(b.read_text().replace("return 1", "return 2"))
    assert hash_of(package, scripts / "uses_a.py") != before


def test_the_forward_models_line_list_counts_byte_for_byte(tree):
    package, scripts = tree
    before = hash_of(package, scripts / "uses_forward.py")
    (package / "resources" / "lines.csv").write_text(MODULES["resources/lines.csv"] + "8662.14,0.9\n")
    assert hash_of(package, scripts / "uses_forward.py") != before
    assert hash_of(package, scripts / "uses_a.py") == CodeHasher(package).code_hash(scripts / "uses_a.py")


class Rule:
    """What add_code_params reads of a Snakemake rule: name, script, basedir and params."""

    def __init__(self, name, script, basedir):
        self.name, self.script, self.params = name, script, Params()
        self.basedir = types.SimpleNamespace(get_path_or_uri=lambda secret_free=True: str(basedir))

    def set_params(self, **kwparams):
        for key, value in kwparams.items():
            self.params.append(value)
            self.params._add_name(key)


def test_every_scripted_rule_gets_the_hash_of_its_own_script(tree):
    package, scripts = tree
    rules_dir = scripts.parent / "rules"
    rules_dir.mkdir()
    rules = [Rule("a", "../scripts/uses_a.py", rules_dir), Rule("forward", "../scripts/uses_forward.py", rules_dir),
             Rule("all", None, rules_dir)]
    assert script_path(rules[0]).resolve() == (scripts / "uses_a.py").resolve()
    hashes = add_code_params(rules, package)
    assert hashes == {"a": hash_of(package, scripts / "uses_a.py"),
                      "forward": hash_of(package, scripts / "uses_forward.py")}
    assert rules[0].params.code == hashes["a"] and rules[1].params.code == hashes["forward"]
    assert "code" not in rules[2].params.keys()
    with pytest.raises(ValueError, match="rule a: its `code` param is derived from its script"):
        add_code_params(rules[:1], package)


def test_the_workflows_scripts_hash_what_they_run():
    package, scripts = REPO / "src" / "specvit", REPO / "workflow" / "scripts"
    hasher = CodeHasher(package)
    simulate = {p.relative_to(package).as_posix() for p in hasher.files_of(scripts / "simulate_split.py")}
    assert {"physics/spectrum.py", "data/contract.py", "resources/forest_lines.csv"} <= simulate
    fig1 = {p.relative_to(package).as_posix() for p in hasher.files_of(scripts / "fig1.py")}
    assert "reporting/figures.py" in fig1 and "reporting/figures.py" not in simulate
    assert len({hasher.code_hash(s) for s in scripts.glob("*.py")}) > 20
