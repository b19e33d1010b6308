"""One interface for every model: fit / predict / save / load, so evaluation never special-cases one.

A model predicts a fixed tuple of labels from spectra ``x`` [N, P] (float32, already noisy: the
caller draws the noise). ``fit`` returns a JSON-serialisable dict of fit information; ``predict``
returns ``{label: float64 [N]}``.

On disk a model is a folder: ``model.json`` (``name``, ``labels``, ``settings``, ``n_features``,
``fit_info``, and the sha256 and size of every payload file) plus the payload files the model
writes in plain formats (LightGBM text models, ``.npz``, ...). Every file is written under a
temporary name and moved into place with ``os.replace``; ``model.json`` is removed first and
written last, so a job killed mid-save leaves a folder that ``load`` rejects with a clear error
instead of a half model that loads. ``load`` checks every payload file against ``model.json`` and
raises ``ValueError`` naming the missing, truncated or corrupt file.

``load_model(directory)`` reads ``model.json`` and dispatches on ``name`` through ``REGISTRY``;
model classes join it with the ``@register("name")`` decorator.
"""
from __future__ import annotations

import abc
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from specvit.runtime.io import atomic_path

MODEL_JSON = "model.json"
FORMAT_VERSION = 1

REGISTRY: dict[str, type[Regressor]] = {}


def register(name: str) -> Callable[[type[Regressor]], type[Regressor]]:
    """Class decorator: set ``cls.name = name`` and make ``load_model`` dispatch ``name`` to ``cls``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")

    def deco(cls: type[Regressor]) -> type[Regressor]:
        old = REGISTRY.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"model name {name!r} is already registered to {old.__module__}.{old.__qualname__}")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return deco


# ----------------------------------------------------------------------------- input checks


def check_labels(labels) -> tuple[str, ...]:
    """Normalise a label list to a non-empty tuple of distinct strings (a bare string is one label)."""
    if isinstance(labels, str):
        labels = (labels,)
    labels = tuple(labels)
    if not labels:
        raise ValueError("labels must name at least one label")
    bad = [lab for lab in labels if not isinstance(lab, str) or not lab]
    if bad:
        raise ValueError(f"labels must be non-empty strings, got {bad!r}")
    dup = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dup:
        raise ValueError(f"labels must be distinct; repeated: {dup}")
    return labels


def _first_nonfinite(x: np.ndarray, block_rows: int = 4096) -> tuple[int, int, int]:
    """(count, first row, first column) of the non-finite entries of 2-D ``x``; count 0 when all finite."""
    count, first = 0, None
    for start in range(0, x.shape[0], block_rows):
        bad = ~np.isfinite(x[start:start + block_rows])
        c = int(bad.sum())
        if c:
            if first is None:
                r, col = np.argwhere(bad)[0]
                first = (start + int(r), int(col))
            count += c
    return (count, *first) if count else (0, -1, -1)


def check_x(x, name: str = "x", n_features: int | None = None) -> np.ndarray:
    """Validate a spectra matrix: 2-D [N, P], floating dtype, N >= 1, all finite, P == n_features if given.

    Returns ``x`` itself as an ndarray (no copy for an ndarray input). The finiteness check runs as
    one float64-accumulated sum (NaN and inf propagate; float32 input cannot overflow it), so a
    1M x 4096 matrix is not copied; only on failure is the first bad entry located.
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N spectra, P pixels]; got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be a floating-point array (float32 spectra); got dtype {x.dtype}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {x.shape}")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(f"{name} has {x.shape[1]} features (pixels) per row; the model was fit on {n_features}")
    total = np.sum(x, dtype=np.float64)
    if not np.isfinite(total):
        count, r, c = _first_nonfinite(x)
        if count:
            raise ValueError(f"{name} has {count} non-finite value(s) (NaN or inf), first at row {r}, "
                             f"column {c} (value {x[r, c]}); spectra must be finite")
    return x


def check_y(y, labels: tuple[str, ...], n: int, name: str = "y") -> dict[str, np.ndarray]:
    """Validate a label dict: every requested label present, 1-D, length ``n``, numeric, finite.

    Returns ``{label: float64 [n]}`` for the requested labels only (extra keys are ignored).
    """
    if not isinstance(y, Mapping):
        raise ValueError(f"{name} must be a dict {{label name: array [N]}}; got {type(y).__name__}")
    missing = [lab for lab in labels if lab not in y]
    if missing:
        raise ValueError(f"{name} is missing label(s) {missing} that the model predicts; "
                         f"it has {sorted(map(str, y))}")
    out = {}
    for lab in labels:
        v = np.asarray(y[lab])
        if v.ndim != 1:
            raise ValueError(f"{name}[{lab!r}] must be a 1-D array [N]; got shape {v.shape}")
        if v.shape[0] != n:
            raise ValueError(f"{name}[{lab!r}] has {v.shape[0]} values but x has {n} rows")
        if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
            raise ValueError(f"{name}[{lab!r}] must be numeric; got dtype {v.dtype}")
        v = v.astype(np.float64)
        bad = ~np.isfinite(v)
        if bad.any():
            raise ValueError(f"{name}[{lab!r}] has {int(bad.sum())} non-finite value(s), "
                             f"first at index {int(np.flatnonzero(bad)[0])}")
        out[lab] = v
    return out


def check_fit_inputs(labels, x_train, y_train, x_val, y_val):
    """Validate the arguments of ``fit``; returns (x_train, y_train, x_val, y_val) with y as float64 dicts."""
    x_train = check_x(x_train, "x_train")
    y_train = check_y(y_train, labels, x_train.shape[0], "y_train")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is not None:
        x_val = check_x(x_val, "x_val", n_features=x_train.shape[1])
        y_val = check_y(y_val, labels, x_val.shape[0], "y_val")
    return x_train, y_train, x_val, y_val


# ----------------------------------------------------------------------------- files


def _jsonable(obj):
    """Round-trip through JSON so fit info / settings are guaranteed serialisable (numpy scalars → Python)."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"{type(o).__name__} is not JSON-serialisable")

    return json.loads(json.dumps(obj, default=default))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path, write: Callable[[Path], None]) -> dict:
    """Write ``path`` through a temporary sibling and ``os.replace``; ``write(tmp_path)`` does the writing.

    Returns ``{"sha256": ..., "bytes": ...}`` of what was written. The temporary file is removed if
    ``write`` fails, so a crash never leaves ``path`` half-written.
    """
    with atomic_path(path) as tmp:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        meta = {"sha256": sha256_file(tmp), "bytes": tmp.stat().st_size}
    return meta


def read_model_json(directory) -> dict:
    """Read and check ``<directory>/model.json``; ValueError naming the file when missing or malformed."""
    path = Path(directory) / MODEL_JSON
    if not path.is_file():
        raise ValueError(f"{path}: missing; not a saved model folder (or its save was interrupted)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable or corrupt JSON ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    for key, typ in (("name", str), ("labels", list), ("settings", dict), ("files", dict)):
        if not isinstance(meta.get(key), typ):
            raise ValueError(f"{path}: field {key!r} missing or not a {typ.__name__}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {meta.get('format_version')!r}; this code reads {FORMAT_VERSION}")
    return meta


def verify_files(directory, meta: dict) -> None:
    """Check every payload file listed in model.json exists with the recorded size and sha256."""
    directory = Path(directory)
    for fname, rec in meta["files"].items():
        p = directory / fname
        if not p.is_file():
            raise ValueError(f"{p}: missing model file (listed in {directory / MODEL_JSON})")
        size = p.stat().st_size
        if size != rec.get("bytes"):
            raise ValueError(f"{p}: corrupt or truncated model file: {size} bytes, expected {rec.get('bytes')}")
        if sha256_file(p) != rec.get("sha256"):
            raise ValueError(f"{p}: corrupt model file: sha256 does not match {directory / MODEL_JSON}")


# ----------------------------------------------------------------------------- the interface


class Regressor(abc.ABC):
    """Base of every model. Subclasses set ``name`` (via ``@register``), implement ``fit``,
    ``predict``, ``settings``, ``_write_payload`` and ``_read_payload``; save/load come from here."""

    name: ClassVar[str] = ""
    labels: tuple[str, ...]
    n_features: int | None = None
    fit_info: dict | None = None

    # --- to implement
    @abc.abstractmethod
    def fit(self, x_train: np.ndarray, y_train: dict[str, np.ndarray], x_val: np.ndarray | None = None,
            y_val: dict[str, np.ndarray] | None = None, log: Callable[[str], Any] = print) -> dict:
        """Fit on x_train [N, P] / y_train {label: [N]}; x_val/y_val for early stopping or model
        selection. Returns a JSON-serialisable dict of fit information."""

    @abc.abstractmethod
    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """{label: float64 [N]} predictions for x [N, P]."""

    @abc.abstractmethod
    def settings(self) -> dict:
        """Constructor keyword arguments (JSON-serialisable, without ``labels``): ``cls(labels=..., **settings)``
        rebuilds an unfitted model with the same configuration."""

    @abc.abstractmethod
    def _write_payload(self, directory: Path) -> dict[str, dict]:
        """Write the fitted state into ``directory`` with ``atomic_write``; return {file name: atomic_write result}."""

    @abc.abstractmethod
    def _read_payload(self, directory: Path, meta: dict) -> None:
        """Restore the fitted state from the (already verified) payload files; ValueError naming a bad file."""

    # --- provided
    def _require_fitted(self) -> None:
        if self.n_features is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() or load() first")

    def _versions(self) -> dict:
        return {"numpy": np.__version__}

    def save(self, directory) -> Path:
        """Write the fitted model into ``directory`` (created if needed); returns the folder."""
        self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_JSON).unlink(missing_ok=True)  # the folder is not a loadable model until done
        files = self._write_payload(directory)
        meta = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "labels": list(self.labels),
            "settings": _jsonable(self.settings()),
            "n_features": int(self.n_features),
            "fit_info": _jsonable(self.fit_info or {}),
            "versions": self._versions(),
            "files": files,
        }
        text = json.dumps(meta, indent=2, sort_keys=False) + "\n"
        atomic_write(directory / MODEL_JSON, lambda p: p.write_text(text))
        return directory

    @classmethod
    def load(cls, directory) -> Regressor:
        """Rebuild a fitted model saved by ``save``; ValueError naming the missing or corrupt file."""
        directory = Path(directory)
        meta = read_model_json(directory)
        if meta["name"] != cls.name:
            raise ValueError(f"{directory / MODEL_JSON}: holds a {meta['name']!r} model, "
                             f"not {cls.name!r}; use specvit.models.base.load_model to dispatch by name")
        verify_files(directory, meta)
        try:
            model = cls(labels=tuple(meta["labels"]), **meta["settings"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"{directory / MODEL_JSON}: settings do not fit {cls.__name__}: {e}") from e
        n = meta.get("n_features")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{directory / MODEL_JSON}: field 'n_features' missing or invalid: {n!r}")
        model.n_features = n
        model.fit_info = meta.get("fit_info") or {}
        model._read_payload(directory, meta)
        return model

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}(labels={self.labels!r}, {args})"


