"""Writing split files in the data contract (``specvit.data.contract``): ``SplitWriter`` streams a
split block by block (the generator of 1M-spectrum files), ``write_split`` writes one held in memory."""
from __future__ import annotations

import operator
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import h5py
import numpy as np

from specvit.data.contract import (
    REQUIRED_LABEL,
    SCHEMA_VERSION,
    DataContractError,
    check_block_values,
    check_names,
    check_wave,
    expect_shape,
)
from specvit.runtime.io import atomic_path

# Written by SplitWriter itself, so callers cannot contradict them through `attrs`.
_RESERVED_ATTRS = ("schema_version", "label_names")


def _attr_value(path, key: str, value):
    """HDF5 attributes hold scalars, strings and flat lists of them; refuse anything else by name
    rather than letting h5py fail with a dtype error."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (str, bool, int, float, np.generic)):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.ndim == 1 and arr.dtype.kind in "biuf":
            return arr
    raise DataContractError(
        f"{path}: attribute '{key}' has unsupported value {value!r}; "
        "expected a scalar, a string or a flat list of them")


class SplitWriter:
    """Stream one split into a new HDF5 file, block of rows by block of rows.

    ``flux`` and ``error`` are preallocated contiguous and uncompressed. Everything goes to a
    temporary file next to `path` (``runtime.io.atomic_path``), renamed onto `path` only once every
    row has been written, so an exception or a crash never leaves a partial file where the workflow
    expects a finished one.
    Datasets are created without timestamps, so the same inputs give byte-identical files.
    """

    def __init__(self, path, n: int, wave, label_names, attrs: dict,
                 jacobian_labels: list[str] | None = None, overwrite: bool = False):
        self.path = Path(path)
        self.n = operator.index(n)
        self.wave = np.asarray(wave, dtype=np.float64)
        self.label_names = tuple(label_names)
        self.jacobian_labels = None if jacobian_labels is None else tuple(jacobian_labels)
        self.attrs = {k: _attr_value(self.path, k, v) for k, v in attrs.items()}
        self.overwrite = overwrite
        self._validate_setup()
        self._written = np.zeros(self.n, dtype=bool)
        self._file = None
        self._commit = None  # the pending rename of the temporary file (runtime.io.atomic_path)

    def _validate_setup(self) -> None:
        if self.n < 1:
            raise DataContractError(f"{self.path}: split has n={self.n} rows; expected at least one spectrum")
        check_wave(self.path, self.wave)
        check_names(self.path, self.label_names, "label names")
        if REQUIRED_LABEL not in self.label_names:
            raise DataContractError(
                f"{self.path}: label names {list(self.label_names)} lack '{REQUIRED_LABEL}'; expected it among them")
        if self.jacobian_labels is not None:
            check_names(self.path, self.jacobian_labels, "jacobian labels")
            unknown = [x for x in self.jacobian_labels if x not in self.label_names]
            if unknown or not self.jacobian_labels:
                raise DataContractError(f"{self.path}: attribute 'jacobian_labels' {list(self.jacobian_labels)} "
                                        f"must be a non-empty subset of the label names {list(self.label_names)}")
        clash = [k for k in _RESERVED_ATTRS if k in self.attrs]
        if clash or "source" not in self.attrs:
            raise DataContractError(f"{self.path}: attrs {sorted(self.attrs)} must contain 'source' and must not set "
                                    f"{list(_RESERVED_ATTRS)} (the writer sets them)")
        if self.path.exists() and not self.overwrite:
            raise FileExistsError(f"{self.path} already exists; pass overwrite=True to replace it")

    def __enter__(self) -> SplitWriter:
        with ExitStack() as stack:  # on an error here the temporary is removed at once
            tmp = stack.enter_context(atomic_path(self.path))
            self._file = self._create(tmp)
            self._commit = stack.pop_all()
        return self

    def _create(self, tmp: Path) -> h5py.File:
        f = h5py.File(tmp, "w")
        n, p = self.n, self.wave.size
        f.create_dataset("wave", data=self.wave, track_times=False)
        for name in ("flux", "error"):
            f.create_dataset(name, shape=(n, p), dtype=np.float32, track_times=False)
        labels = f.create_group("labels")
        for name in self.label_names:
            labels.create_dataset(name, shape=(n,), dtype=np.float32, track_times=False)
        if self.jacobian_labels is not None:
            jac = f.create_dataset("jacobian", shape=(n, p, len(self.jacobian_labels)), dtype=np.float32,
                                   track_times=False)
            jac.attrs["jacobian_labels"] = list(self.jacobian_labels)
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["label_names"] = list(self.label_names)
        for key, value in self.attrs.items():
            f.attrs[key] = value
        return f

    def write(self, start: int, flux, error, labels: dict, jacobian=None) -> None:
        """Write rows start..start+len(flux)-1. Values are checked here, so bad data fails at the
        block that produced it instead of in a later stage."""
        if self._file is None:
            raise RuntimeError("SplitWriter.write() called outside its with-block")
        start = operator.index(start)
        flux = np.asarray(flux, dtype=np.float32)
        rows = flux.shape[0] if flux.ndim else 0
        if not 0 <= start <= start + rows <= self.n or rows < 1:
            raise DataContractError(f"{self.path}: block of {rows} rows at start={start} does not fit; "
                                    f"expected 1 or more rows within 0..{self.n}")
        p = self.wave.size
        stop = start + rows
        error = np.asarray(error, dtype=np.float32)
        expect_shape(self.path, "flux", flux.shape, (rows, p), "[rows, len(wave)]")
        expect_shape(self.path, "error", error.shape, (rows, p), "[rows, len(wave)]")
        check_block_values(self.path, "flux", flux, start)
        check_block_values(self.path, "error", error, start, positive=True)
        if set(labels) != set(self.label_names):
            raise DataContractError(f"{self.path}: block labels {sorted(labels)} differ from the label names "
                                    f"{sorted(self.label_names)}; expected exactly those")
        label_arrays = {name: np.asarray(labels[name], dtype=np.float32) for name in self.label_names}
        for name, values in label_arrays.items():
            expect_shape(self.path, f"labels/{name}", values.shape, (rows,), "[rows]")
            check_block_values(self.path, f"labels/{name}", values, start)
        if (jacobian is None) != (self.jacobian_labels is None):
            state = "missing" if jacobian is None else "unexpected"
            raise DataContractError(f"{self.path}: dataset 'jacobian' block is {state}; "
                                    "expected one exactly when jacobian_labels were given")
        if jacobian is not None:
            jacobian = np.asarray(jacobian, dtype=np.float32)
            expect_shape(self.path, "jacobian", jacobian.shape, (rows, p, len(self.jacobian_labels)),
                          "[rows, len(wave), len(jacobian_labels)]")
            check_block_values(self.path, "jacobian", jacobian, start)
            self._file["jacobian"][start:stop] = jacobian
        self._file["flux"][start:stop] = flux
        self._file["error"][start:stop] = error
        for name, values in label_arrays.items():
            self._file["labels"][name][start:stop] = values
        self._written[start:stop] = True

    def __exit__(self, exc_type, exc, tb) -> None:
        f, self._file = self._file, None
        commit, self._commit = self._commit, None
        try:
            f.close()
            if exc_type is None:
                self._check_complete()
        except BaseException:
            commit.__exit__(*sys.exc_info())  # the temporary is removed, nothing renamed
            raise
        commit.__exit__(exc_type, exc, tb)  # renamed onto the path only when the block succeeded

    def _check_complete(self) -> None:
        missing = np.flatnonzero(~self._written)
        if missing.size:
            raise DataContractError(f"{self.path}: {missing.size} of {self.n} rows were never written "
                                    f"(first missing row {missing[0]}); expected every row written")
        if self.path.exists() and not self.overwrite:
            raise FileExistsError(f"{self.path} appeared while writing; pass overwrite=True to replace it")


def write_split(path, wave, flux, error, labels: dict, attrs: dict, *, jacobian: dict | None = None,
                overwrite: bool = False) -> None:
    """Write a whole split at once (small files, tests, imports of in-memory data). ``labels`` is
    {name: [N]}; ``jacobian``, if given, {label: d flux / d label [N, P]} for some of the labels,
    stored as the [N, P, K] dataset ``jacobian`` with its ``jacobian_labels`` in that order."""
    jacobian_labels, stacked = None, None
    if jacobian is not None:
        jacobian_labels = list(jacobian)
        stacked = np.stack([np.asarray(jacobian[name], dtype=np.float32) for name in jacobian_labels], axis=-1)
    with SplitWriter(path, len(flux), wave, list(labels), attrs, jacobian_labels, overwrite) as writer:
        writer.write(0, flux, error, labels, stacked)
