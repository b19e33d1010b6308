"""One interface for every model: fit / predict / save / load, so evaluation never special-cases one.

A model predicts a fixed tuple of labels from spectra ``x`` [N, P] (float32, already noisy: the
caller draws the noise). ``fit`` returns a JSON-serialisable dict of fit information; ``predict``
returns ``{label: float64 [N]}``.

On disk a model is a folder: ``model.json`` (``name``, ``labels``, ``settings``, ``n_features``,
``fit_info``, and the sha256 and size of every payload file) plus the payload files the model
writes in plain formats (LightGBM text models, ``.npz``, ...). Every file is written under a
temporary name and moved into place (``write_model_file``); ``model.json`` is removed first and
written last, so a job killed mid-save leaves a folder that ``load`` rejects with a clear error
instead of a half model that loads. ``load`` checks every payload file against ``model.json`` and
raises ``ValueError`` naming the missing, truncated or corrupt file.

``specvit.training.factory.load_model(directory)`` reads ``model.json`` and dispatches on ``name``
through ``REGISTRY``; model classes join it with the ``@register("name")`` decorator. Input checks
shared by the models are in ``specvit.models.checks``.
"""
from __future__ import annotations

import abc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from specvit.runtime.hashing import file_hash
from specvit.runtime.io import atomic_path, jsonable

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


# ----------------------------------------------------------------------------- files


def write_model_file(path, write: Callable[[Path], None]) -> dict:
    """Write one file of a saved model atomically (``runtime.io.atomic_path``, flushed to disk before
    the rename); ``write(tmp_path)`` does the writing. Returns its ``{"sha256", "bytes"}`` for model.json."""
    with atomic_path(path, fsync=True) as tmp:
        write(tmp)
    return file_hash(path)


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
        if file_hash(p)["sha256"] != rec.get("sha256"):
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
        """Write the fitted state into ``directory`` with ``write_model_file``; return {file name: its result}."""

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
            "settings": self.settings(),
            "n_features": int(self.n_features),
            "fit_info": self.fit_info or {},
            "versions": self._versions(),
            "files": files,
        }
        text = json.dumps(jsonable(meta), indent=2) + "\n"  # NaN (JSON has none) becomes null
        write_model_file(directory / MODEL_JSON, lambda p: p.write_text(text))
        return directory

    @classmethod
    def load(cls, directory) -> Regressor:
        """Rebuild a fitted model saved by ``save``; ValueError naming the missing or corrupt file."""
        directory = Path(directory)
        meta = read_model_json(directory)
        if meta["name"] != cls.name:
            raise ValueError(f"{directory / MODEL_JSON}: holds a {meta['name']!r} model, "
                             f"not {cls.name!r}; use specvit.training.factory.load_model to dispatch by name")
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


