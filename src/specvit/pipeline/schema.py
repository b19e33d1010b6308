"""The config schema (``config/schema/config.schema.yaml``): the one place where every key, its type,
its bounds and its default are stated.

``with_defaults`` lays a config over the schema's defaults (nested mappings merge key by key, as
Snakemake merges config files), ``fill_defaults`` fills what is still missing (the defaults inside
list items, such as a run group's ``seeds``), and ``schema_messages`` turns the schema's errors into
short messages that name each offending key by its full path.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators

SCHEMA_FILE = Path("config") / "schema" / "config.schema.yaml"
# the schema of this checkout: src/specvit/pipeline/ -> the repository root
SCHEMA_PATH = Path(__file__).resolve().parents[3] / SCHEMA_FILE


@functools.cache
def _load(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def load_schema(path=None) -> dict:
    """The schema as a fresh mapping (callers may change it)."""
    return copy.deepcopy(_load(str(path or SCHEMA_PATH)))


def _set_defaults(validate_properties):
    """The ``properties`` keyword, extended to insert each missing property's default (a copy) first."""

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, props, instance, schema)

    return properties


_FILLING = validators.extend(Draft202012Validator,
                             {"properties": _set_defaults(Draft202012Validator.VALIDATORS["properties"])})


def fill_defaults(config: dict, schema: dict | None = None) -> dict:
    """Insert every missing key that has a default, at every level (in place; returns ``config``).
    Validation errors are left to ``schema_messages``."""
    for _ in _FILLING(schema or load_schema()).iter_errors(config):
        pass
    return config


def schema_defaults(schema: dict | None = None) -> dict:
    """The config that the schema's defaults alone describe (the default run)."""
    return fill_defaults({}, schema)


def merge(base: dict, over: dict) -> dict:
    """``over`` laid over ``base`` as Snakemake merges config files: mappings merge key by key, every
    other value (a list, a number, null) replaces the base's. Returns a new mapping."""
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in over.items():
        out[key] = merge(out.get(key), value) if isinstance(value, dict) else copy.deepcopy(value)
    return out


def with_defaults(config: dict, schema: dict | None = None) -> dict:
    """``config`` over the schema's defaults, every default filled: what the workflow runs with."""
    return fill_defaults(merge(schema_defaults(schema), config), schema)


# ---------------------------------------------------------------- messages


def key_path(path) -> str:
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


def _condition(schema, err) -> str:
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
    hops = sum(1 for p in sp[cut + 1:-1] if p in _INSTANCE_HOPS)
    base = list(err.absolute_path)[:len(err.absolute_path) - hops]
    conds = [f"{key_path(base + [k])} is {v['const']!r}"
             for k, v in node.get("if", {}).get("properties", {}).items() if "const" in v]
    return f" (because {' and '.join(conds)})" if conds else ""


_JSON_TYPES = {"integer": "an integer", "number": "a number", "string": "a string", "array": "a list",
               "object": "a mapping", "boolean": "true/false", "null": "null"}


def _type_message(err, schema, key: str, path: list) -> str:
    if err.instance is None and "then" in err.schema_path:
        return f"config key '{key}' must be set{_condition(schema, err)}"
    types = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
    want = " or ".join(_JSON_TYPES.get(t, t) for t in types)
    hint = ""
    if isinstance(err.instance, str) and len(path) > 1:
        hint = " [snakemake passes values nested in --config as strings; use --configfile]"
    return (f"config key '{key}' must be {want}, got {err.instance!r} "
            f"({type(err.instance).__name__}){_condition(schema, err)}{hint}")


def _describe(err, schema) -> list[str]:
    path = list(err.absolute_path)
    key = key_path(path)
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        return [f"config key '{key_path(path + [k])}' is not allowed (allowed: {', '.join(allowed)})"
                for k in err.instance if k not in allowed]
    if err.validator == "required":
        return [f"config key '{key_path(path + [k])}' is required{_condition(schema, err)}"
                for k in err.validator_value if k not in err.instance]
    if err.validator == "type":
        return [_type_message(err, schema, key, path)]
    if err.validator == "enum":
        return [f"config key '{key}' must be one of {err.validator_value}, got {err.instance!r}"]
    return [f"config key '{key}' is invalid: {err.message}"]


def schema_messages(config: dict, schema: dict | None = None) -> list[str]:
    """One message per key that breaks the schema, e.g. "config key 'data.n_tset' is not allowed
    (allowed: ...)", sorted by key; [] for a valid config. ``config`` is not changed."""
    schema = schema or load_schema()
    errors = sorted(Draft202012Validator(schema).iter_errors(copy.deepcopy(config)),
                    key=lambda e: [str(p) for p in e.absolute_path])
    msgs: list[str] = []
    for err in errors:
        msgs += [m for m in _describe(err, schema) if m not in msgs]
    return sorted(msgs, key=lambda m: m.split("'")[1])
