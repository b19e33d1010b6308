# Helpers shared by all the .smk files: config checks, paths, seeds, targets.
# Rules stay pure wiring; everything that needs a decision lives here.

import copy
import os
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from specvit.runtime.io import check_writable_folder


SPLITS = ("train", "val", "test")

# Every random stream is derived from the master seed `config["seed"]` with a
# fixed offset, so changing the master seed changes all of them together and
# no two streams share a seed.
SEED_OFFSETS = {
    "train": 0,
    "val": 1,
    "test": 2,
    "subsets": 3,
    "calibration": 4,
    "val_noise": 5,
    "test_noise": 6,
}

# The conda environments install the package of THIS checkout (envs/*.post-deploy.sh
# read it; snakemake creates the envs from copies under .snakemake/conda/, so the env
# files cannot locate the repository themselves).
os.environ.update(SPECVIT_REPO=str(Path(workflow.basedir).resolve()))


wildcard_constraints:
    split="|".join(SPLITS),


# ---------------------------------------------------------------- config checks


def _key(path):
    """'data.labels.logg.min' / 'data.subsets[2]' from a jsonschema path."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<config>"


def _deref(schema, ref):
    """Resolve a local '#/$defs/...' reference (the only kind the schema uses)."""
    node = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


_INSTANCE_HOPS = ("properties", "additionalProperties", "items", "prefixItems")


def _condition(schema, err):
    """' (because data.source is 'hdf5')' for an error raised inside a `then:` branch."""
    sp = list(err.schema_path)
    if "then" not in sp:
        return ""
    cut = len(sp) - 1 - sp[::-1].index("then")
    node = schema
    for p in sp[:cut] + [None]:  # jsonschema leaves '$ref' hops out of schema_path
        while "$ref" in node and (p not in node if p is not None else "if" not in node):
            node = _deref(schema, node["$ref"])
        if p is not None:
            node = node[p]
    # instance path of the object that carries the if/then
    hops = sum(1 for p in sp[cut + 1 : -1] if p in _INSTANCE_HOPS)
    base = list(err.absolute_path)[: len(err.absolute_path) - hops]
    conds = [
        f"{_key(base + [k])} is {v['const']!r}"
        for k, v in node.get("if", {}).get("properties", {}).items()
        if "const" in v
    ]
    return f" (because {' and '.join(conds)})" if conds else ""


_JSON_TYPES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "boolean": "true/false",
    "null": "null",
}


def _describe(err, schema):
    path = list(err.absolute_path)
    key = _key(path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        return [
            f"config key '{_key(path + [k])}' is not allowed (allowed: {', '.join(allowed)})"
            for k in extra
        ]
    if v == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        return [
            f"config key '{_key(path + [k])}' is required{_condition(schema, err)}"
            for k in missing
        ]
    if v == "type" and err.instance is None and "then" in err.schema_path:
        return [f"config key '{key}' must be set{_condition(schema, err)}"]
    if v == "type":
        types = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        want = " or ".join(_JSON_TYPES.get(t, t) for t in types)
        hint = ""
        if isinstance(err.instance, str) and len(path) > 1:
            hint = " [snakemake passes values nested in --config as strings; use --configfile]"
        return [
            f"config key '{key}' must be {want}, got {err.instance!r} "
            f"({type(err.instance).__name__}){_condition(schema, err)}{hint}"
        ]
    if v == "enum":
        return [f"config key '{key}' must be one of {err.validator_value}, got {err.instance!r}"]
    return [f"config key '{key}' is invalid: {err.message}"]


def check_config(cfg, schema_path):
    """Validate `cfg` against the schema (the source of truth) and raise ONE
    ValueError that names every offending key by its full path, e.g.
    "config key 'data.n_tset' is not allowed (allowed: ...)".

    Runs before snakemake.utils.validate only to give short messages; the
    schema itself is not duplicated here."""
    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(copy.deepcopy(cfg)), key=lambda e: [str(p) for p in e.absolute_path])
    msgs = []
    for err in errors:
        for m in _describe(err, schema):
            if m not in msgs:
                msgs.append(m)
    if msgs:
        msgs.sort(key=lambda m: m.split("'")[1])
        raise ValueError(
            "invalid config (schema: config/schema/config.schema.yaml):\n  - " + "\n  - ".join(msgs)
        )


def check_consistency(cfg):
    """Cross-key checks that a JSON schema cannot express (run after defaults are filled)."""
    msgs = []
    data = cfg["data"]
    for k in ("train_mags", "test_mags"):
        lo, hi = data[k]
        if lo > hi:
            msgs.append(f"config key 'data.{k}' must be [bright, faint] with bright <= faint, got {data[k]}")
    for name, prior in (data["labels"] or {}).items():
        if "min" in prior and "max" in prior and not prior["min"] < prior["max"]:
            msgs.append(
                f"config key 'data.labels.{name}' needs min < max, got min={prior['min']}, max={prior['max']}"
            )
    if data["source"] == "synthetic" and max(data["subsets"]) > data["n_train_pool"]:
        msgs.append(
            f"config key 'data.subsets' has N={max(data['subsets'])} larger than "
            f"'data.n_train_pool'={data['n_train_pool']}"
        )
    missing_mags = sorted(set(cfg["eval"]["pred_vs_true_mags"]) - set(cfg["eval"]["mags"]))
    if missing_mags:
        msgs.append(f"config key 'eval.pred_vs_true_mags' has {missing_mags}, which are not in 'eval.mags'")
    subsets = set(data["subsets"])
    for i, group in enumerate(cfg["runs"]):
        missing = sorted(set(group["n_train"]) - subsets)
        if missing:
            msgs.append(
                f"config key 'runs[{i}].n_train' ({group['name']}) has N={missing}, which are not in "
                f"'data.subsets' {sorted(subsets)}; add them there"
            )
    if data["source"] == "hdf5":
        for split in SPLITS:
            if not Path(data[split]).is_file():
                msgs.append(f"config key 'data.{split}': file {data[split]!r} does not exist")
    if msgs:
        raise ValueError("invalid config:\n  - " + "\n  - ".join(msgs))


# ---------------------------------------------------------------- paths, seeds


def is_synthetic():
    return config["data"]["source"] == "synthetic"


def data_path(split):
    """The HDF5 file of a split: generated under results/data for source
    'synthetic', the user's own file (read in place, never copied) for 'hdf5'."""
    if is_synthetic():
        return f"results/data/{split}.h5"
    return config["data"][split]


def split_seed(split):
    return config["seed"] + SEED_OFFSETS[split]


def stream_seed(name):
    return config["seed"] + SEED_OFFSETS[name]


def split_size(split):
    return {
        "train": config["data"]["n_train_pool"],
        "val": config["data"]["n_val"],
        "test": config["data"]["n_test"],
    }[split]


def split_mags(split):
    return config["data"]["test_mags" if split == "test" else "train_mags"]


def subset_path(n):
    return f"results/data/subsets/N{n}.npy"


def subset_paths():
    return [subset_path(n) for n in sorted(config["data"]["subsets"])]


# ---------------------------------------------------------------- targets


def data_targets():
    out = [f"results/data/{s}.summary.json" for s in SPLITS]
    if is_synthetic():
        out += [data_path(s) for s in SPLITS]
    return out + subset_paths()


def calibration_targets():
    return [
        "results/calibration/ceiling_vs_paper.csv",
        "results/calibration/snr_vs_mag.csv",
        "results/figures/spectra_examples.pdf",
        "results/figures/spectra_examples.png",
    ]


def run_targets():
    return [f"results/runs/{rid}/metrics.json" for rid in RUNS]


def run_file(name, run_ids=None):
    """The file ``name`` of every run (or of the given run ids)."""
    return [f"results/runs/{rid}/{name}" for rid in (GROUP_RUNS if run_ids is None else run_ids)]


def vit_runs():
    return [rid for rid in GROUP_RUNS if RUNS[rid].model == "vit"]


def figure_targets():
    stems = ["fig1_r2_vs_snr", "fig3_scaling", "pred_vs_true"] + (["learning_curves"] if vit_runs() else [])
    return [f"results/figures/{s}.{ext}" for s in stems for ext in ("pdf", "png")]


def table_targets():
    return [f"results/tables/table3_main.{ext}" for ext in ("csv", "md", "tex")] + [
        "results/tables/ceiling.csv", "results/tables/scaling.csv", "results/tables/scaling_summary.csv"]


def ablation_targets():
    """Table (csv, md, tex) and figure (pdf, png) of every declared ablation (workflow/rules/ablations.smk)."""
    from specvit.studies.ablations import KINDS

    return [f"results/tables/{KINDS[a].table}.{ext}" for a in ABLATIONS for ext in ("csv", "md", "tex")] + [
        f"results/figures/{KINDS[a].figure}.{ext}" for a in ABLATIONS for ext in ("pdf", "png")] + (
        [f"results/tables/tokenization_init.{ext}" for ext in ("csv", "md", "tex")] if "tokenization" in ABLATIONS else [])


def all_targets():
    """Everything `rule all` builds; later stages append their own lists here."""
    return (data_targets() + calibration_targets() + run_targets() + table_targets() + figure_targets()
            + ablation_targets() + beyond_targets() + tracking_targets())


# ---------------------------------------------------------------- code tracking

# Snakemake notices edits to a rule's script but not to the package modules the script
# imports. Each job therefore gets a param `code`, a hash of the specvit modules its script
# imports, directly or through other specvit modules (a static scan of import statements,
# including those inside functions). Editing the forward model makes the data and everything
# downstream stale; editing the plotting module only the figures. A module counts by its syntax
# tree without docstrings, so editing comments, docstrings or layout makes nothing stale.

import ast
import hashlib

PACKAGE_DIR = Path(workflow.basedir) / "src" / "specvit"


_PARSED = {}


def _parsed(path):
    """(specvit imports, digest of the code) of the Python file at ``path``; each file is parsed
    once per workflow load, since every rule's hash walks the same modules."""
    path = Path(path)
    if path not in _PARSED:
        tree = ast.parse(path.read_text(), filename=str(path))
        imports = _scan_imports(tree)  # first: _code_digest strips the docstrings in place
        _PARSED[path] = (imports, _code_digest(tree))
    return _PARSED[path]


def _specvit_imports(path):
    """specvit module names imported anywhere in the file at ``path``."""
    return _parsed(path)[0]


def _code_digest(tree):
    """Digest of a module's syntax tree without its docstrings: what the code does, not how it
    is commented or laid out (line numbers are left out too)."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _scan_imports(tree):
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("specvit"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("specvit"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from specvit import x`
    return found


def _module_file(name):
    parts = name.split(".")[1:]
    if not parts:
        return PACKAGE_DIR / "__init__.py"
    rel = Path(*parts)
    for candidate in (PACKAGE_DIR / rel.with_suffix(".py"), PACKAGE_DIR / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def code_hash(script):
    """Hash of the specvit modules that the workflow script ``script`` (relative to
    workflow/scripts) imports, transitively (their code, not their comments or docstrings);
    resources (line lists) count as code too, byte for byte."""
    todo, seen = list(_specvit_imports(Path(workflow.basedir) / "workflow" / "scripts" / script)), set()
    files = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is not None:
            files.add(path)
            todo.extend(_specvit_imports(path))
    if any(p.name == "spectrum.py" for p in files):
        files.update((PACKAGE_DIR / "resources").glob("*.csv"))
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(_parsed(path)[1].encode() if path.suffix == ".py" else path.read_bytes())
    return digest.hexdigest()[:16]
