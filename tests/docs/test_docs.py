"""The documentation: README.md and the MkDocs pages in docs/ say only what is true of the repository.

- the config reference of docs/configuration.md is what tools/config_reference.py generates from
  the schema (so defaults are written once, in the schema);
- the rule-graph picture has exactly the rules and edges Snakemake reports;
- README.md stays a short front door whose links resolve and whose quick start is what CI runs;
- every repository file, specvit module or attribute, rule and test the pages name exists.
(`mkdocs build --strict` in .ci/run checks the links between the pages.)
"""
import ast
import copy
import importlib.util
import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from conftest import REPO, SCHEMA

DOCS = REPO / "docs"
PAGES = sorted([REPO / "README.md", *DOCS.glob("*.md")], key=str)
PACKAGE = REPO / "src" / "specvit"


def load_tool(name):
    """A script of tools/ as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the config reference


def schema_keys(node, schema, path):
    """Every key path of the schema, written as the reference writes it (independently of the tool)."""
    if "$ref" in node:
        target = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    yield path
    props = node.get("properties", {})
    refs = [v.get("$ref") for v in props.values() if set(v) == {"$ref"}]
    for name, child in props.items():
        shared = set(child) == {"$ref"} and refs.count(child["$ref"]) > 1
        yield from schema_keys(child, schema, f"{path}.{'<name>' if shared else name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_keys(node["additionalProperties"], schema, f"{path}.<name>")
    items = node.get("items", {})
    for name, child in items.get("properties", {}).items() if isinstance(items, dict) else ():
        yield from schema_keys(child, schema, f"{path}[].{name}")


def test_config_reference_is_what_the_schema_generates():
    tool = load_tool("config_reference")
    page = (DOCS / "configuration.md").read_text()
    schema = yaml.safe_load(SCHEMA.read_text())
    assert page == tool.page_with_reference(page, schema), (
        "docs/configuration.md differs from the schema: run python tools/config_reference.py")


def test_config_reference_lists_every_key_with_its_default():
    schema = yaml.safe_load(SCHEMA.read_text())
    page = (DOCS / "configuration.md").read_text()
    page = page[page.index("<!-- BEGIN config reference"):page.index("<!-- END config reference")]
    rows = dict(re.findall(r"^\| `([^`]+)` \| [^|]*(?:\\\|[^|]*)* \| ([^|]*) \|", page, flags=re.M))
    keys = {k for top, node in schema["properties"].items() for k in schema_keys(node, schema, top)}
    assert keys == set(rows)
    # defaults as the schema states them, spot-checked through an independent reading
    assert rows["seed"] == f"`{schema['properties']['seed']['default']}`"
    assert rows["training.epochs"] == f"`{schema['properties']['training']['properties']['epochs']['default']}`"
    assert rows["data.train_mags"] == "`[20.5, 22.5]`"
    assert rows["runs[].labels"] == "`[logg]`"


def test_config_reference_follows_a_changed_default_and_refuses_a_page_without_markers():
    tool = load_tool("config_reference")
    schema = yaml.safe_load(SCHEMA.read_text())
    changed = copy.deepcopy(schema)
    changed["properties"]["training"]["properties"]["epochs"]["default"] = 7
    page = (DOCS / "configuration.md").read_text()
    assert "| `training.epochs` | integer ≥ 1 | `7` |" in tool.page_with_reference(page, changed)
    assert tool.page_with_reference(page, changed) != page
    with pytest.raises(ValueError, match="marker lines"):
        tool.page_with_reference("# Configuration\n", schema)


# ------------------------------------------------------------------ the rule graph


def svg_graph(path):
    """({rule: rule file}, edges) drawn in an SVG that Graphviz made from tools/rule_graph.py's source."""
    ns = {"svg": "http://www.w3.org/2000/svg"}
    groups = list(ET.parse(path).getroot().iterfind(".//svg:g", ns))
    files = {g.find("svg:title", ns).text: g.get("id").split("/")[0] for g in groups if g.get("class") == "node"}
    edges = {tuple(g.find("svg:title", ns).text.split("->")) for g in groups if g.get("class") == "edge"}
    return files, edges


def test_rule_graph_picture_has_the_workflows_rules_edges_and_rule_files():
    tool = load_tool("rule_graph")
    rules, edges = tool.drawn(*tool.snakemake_rule_graph())
    assert "train_run" in rules and ("train_run", "evaluate_run") in edges  # the graph was read
    where = tool.rule_files()
    drawn_files, drawn_edges = svg_graph(DOCS / "images" / "rulegraph.svg")
    assert (drawn_files, drawn_edges) == ({r: where[r] for r in rules}, edges), (
        "docs/images/rulegraph.svg is out of date: run python tools/rule_graph.py")


# ------------------------------------------------------------------ README


def markdown_links(text):
    """Targets of [text](target) and ![alt](target) outside code blocks."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)


def test_readme_links_resolve():
    links = markdown_links((REPO / "README.md").read_text())
    local = [t for t in links if not re.match(r"[a-z]+:", t)]
    assert "docs/images/fig1_r2_vs_snr.png" in local and "docs/results.md" in local
    missing = [t for t in local if not (REPO / t.split("#")[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_readme_is_a_short_front_door_with_the_quick_start_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert len(readme.splitlines()) <= 250
    blocks = re.findall(r"```bash\n(.*?)\n```", readme.split("## Quick start", 1)[1], flags=re.S)
    install, tests = blocks[0], blocks[1]
    assert tests == "python -m pytest -q" and re.search(r"^python -m pytest -q$", ci, flags=re.M)
    pin = re.search(r"pip install (torch==\S+)", install).group(1)
    assert f"pip install {pin}\n" in ci, "README.md and .ci/run pin different torch builds"
    assert 'pip install -e ".[test]"' in install and "snakemake results/figures/fig1_r2_vs_snr.pdf" in install


# ------------------------------------------------------------------ names the pages use

PATH_PREFIXES = ("src/", "workflow/", "config/", "tests/", "tools/", "benchmarks/", "profiles/", "envs/",
                 "docs/", ".ci/")
NOT_MODULES = {"specvit.run_id"}  # the MLflow tag of a run, not a module


def top_level_names(path):
    """{name: class body names or None} defined or imported at the top of a module."""
    names = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = None
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update({(a.asname or a.name).split(".")[0]: None for a in node.names})
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update({t.id: None for t in targets if isinstance(t, ast.Name)})
    return names


def module_problem(dotted):
    """None if `specvit.a.b[.attr[.method]]` exists, else what is missing."""
    parts = dotted.split(".")[1:]
    for cut in range(len(parts), 0, -1):  # the longest prefix that is a module or package
        base = PACKAGE.joinpath(*parts[:cut])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if module.is_file():
            break
    else:
        return "no such module"
    rest = parts[cut:]
    if not rest:
        return None
    names = top_level_names(module)
    if rest[0] not in names:
        where = module.parent if module.name == "__init__.py" else module
        return f"no module or name {rest[0]} in {where.relative_to(REPO)}"
    if len(rest) > 1 and (names[rest[0]] is None or rest[1] not in names[rest[0]] or len(rest) > 2):
        return f"{module.relative_to(REPO)}: {rest[0]} has no {'.'.join(rest[1:])}"
    return None


def rule_names():
    files = [*(REPO / "workflow" / "rules").glob("*.smk"), REPO / "Snakefile"]
    return {r for f in files for r in re.findall(r"^\s*(?:rule|checkpoint) (\w+):", f.read_text(), flags=re.M)}


def named_rules(text):
    """Rules named as "rule `x`" or "rules `x`, `y` and `z`"."""
    lists = re.findall(r"\brules? (`\w+`(?:,? (?:and )?`\w+`)*)", text)
    return {rule for names in lists for rule in re.findall(r"`(\w+)`", names)}


def config_key_names():
    """Every property name of the config schema (`test_noise` is a key, not a test)."""
    def walk(node):
        if isinstance(node, dict):
            yield from node.get("properties", {}) if isinstance(node.get("properties"), dict) else ()
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)
    return set(walk(yaml.safe_load(SCHEMA.read_text())))


def named_tests(text):
    """test_* functions named in backticks (bare, or as file::test), config keys aside."""
    return set(re.findall(r"`(?:[\w/.]+::)?(test_\w+)`", text)) - config_key_names()


def defined_tests():
    return {n.name for f in (REPO / "tests").rglob("test_*.py") for n in ast.walk(ast.parse(f.read_text()))
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def named_paths(text):
    """Repository paths a page names: tokens that start with a top-level folder, without patterns."""
    found = set()
    for token in re.split(r"[\s`()\"',;]+", text):
        token = token.split("::")[0].split("#")[0].rstrip(".:")
        if token.startswith(PATH_PREFIXES) and not re.search(r"[<>{}*\[\]|$]", token):
            found.add(token)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_file_module_rule_and_test_a_page_names_exists(page):
    text = page.read_text()
    problems = [f"file {p}" for p in sorted(named_paths(text)) if not (REPO / p).exists()]
    modules = set(re.findall(r"\bspecvit(?:\.\w+)+", text)) - NOT_MODULES
    problems += [f"{m}: {why}" for m in sorted(modules) if (why := module_problem(m))]
    problems += [f"rule {r}" for r in sorted(named_rules(text) - rule_names())]
    problems += [f"test {t}" for t in sorted(named_tests(text) - defined_tests())]
    assert not problems, f"{page.relative_to(REPO)} names what does not exist: {problems}"


def test_the_name_checks_catch_what_is_missing():
    assert named_paths("see `src/specvit/physics/spectrum.py` and `workflow/report/<name>.rst`.") == {
        "src/specvit/physics/spectrum.py"}
    assert module_problem("specvit.physics.spectrum.SpectrumModel") is None
    assert module_problem("specvit.models.vit.SpecViT.attention_maps") is None
    assert module_problem("specvit.physics.spectrum.NoSuchThing") is not None
    assert module_problem("specvit.nosuchlayer.module") == "no such module"
    assert named_tests("`test_noise: [0.5]` in `tests/x.py::test_a` and `test_b`") == {"test_a", "test_b"}
    assert "train_run" in rule_names() and "beyond" not in rule_names()
    assert named_rules("rules `a`, `b` and `c`; the rule `d` (rule all)") == {"a", "b", "c", "d"}
