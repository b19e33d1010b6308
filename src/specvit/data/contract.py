"""The HDF5 data contract: one file per split, how it is written, read and validated.

Every stage (generation, training, baselines, ceilings) reaches data only through this module,
so user-supplied files and the built-in synthetic generator are interchangeable, and a malformed
file fails once, early, with a message that names the file, the dataset, the problem and what
was expected (see DESIGN.md, "Data contract").

Layout: ``wave`` float64 [P]; ``flux``, ``error`` float32 [N, P]; ``labels/<name>`` float32 [N]
(``logg`` required); optional ``jacobian`` float32 [N, P, K] with attribute ``jacobian_labels``.
``flux`` and ``error`` are contiguous and uncompressed: random 256-row batches read ~18x faster
than from chunked datasets, and compression saves almost nothing on noisy spectra.
"""
from __future__ import annotations

import operator
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

SCHEMA_VERSION = 1
REQUIRED_LABEL = "logg"
# Written by SplitWriter itself, so callers cannot contradict them through `attrs`.
_RESERVED_ATTRS = ("schema_version", "label_names")


class DataContractError(ValueError):
    """A file or an array breaks the data contract; the message says where, what and what was expected."""


@dataclass(frozen=True)
class SplitInfo:
    """What validate_file learned about a split; sizes and label set come from here, never from constants."""

    path: Path
    n: int
    n_pixels: int
    label_names: tuple[str, ...]
    wave_min: float
    wave_max: float
    has_jacobian: bool
    attrs: dict
    jacobian_labels: tuple[str, ...] = field(default=())


# ----------------------------------------------------------------------------- checks


def _check_wave(path, wave: np.ndarray) -> None:
    """Wavelengths index every pixel, so they must be a finite, strictly increasing 1-D grid."""
    if wave.ndim != 1 or wave.size < 1:
        raise DataContractError(f"{path}: dataset 'wave' has shape {wave.shape}; expected a non-empty 1-D array [P]")
    if not np.all(np.isfinite(wave)):
        raise DataContractError(f"{path}: dataset 'wave' has non-finite values; expected finite wavelengths in Å")
    step = np.diff(wave)
    if np.any(step <= 0):
        i = int(np.flatnonzero(step <= 0)[0]) + 1
        raise DataContractError(
            f"{path}: dataset 'wave' is not strictly increasing "
            f"(wave[{i}] = {wave[i]} <= wave[{i - 1}] = {wave[i - 1]}); "
            "expected strictly increasing wavelengths in Å")


def _check_values(path, name: str, block: np.ndarray, row0: int, positive: bool = False) -> None:
    """Reject NaN/Inf (and values <= 0 when `positive`) in rows row0.. of a dataset, pointing at the first bad one."""
    bad = ~np.isfinite(block)
    if bad.any():
        n_nan = int(np.isnan(block).sum())
        what = f"{int(bad.sum())} non-finite values ({n_nan} NaN, {int(bad.sum()) - n_nan} Inf)"
        expected = "finite values"
    elif positive and np.any(block <= 0):
        bad = block <= 0
        what, expected = f"{int(bad.sum())} values <= 0", "strictly positive 1-sigma noise"
    else:
        return
    first = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
    where = ", ".join(f"{axis} {i + (row0 if axis == 'row' else 0)}"
                      for axis, i in zip(("row", "pixel", "label"), first))
    raise DataContractError(f"{path}: dataset '{name}' has {what} (first at {where}); expected {expected}")


def _check_names(path, names: tuple[str, ...], what: str) -> None:
    """Label names become HDF5 paths (labels/<name>), so they must be unique, non-empty and slash-free."""
    if len(set(names)) != len(names) or any(not isinstance(x, str) or not x or "/" in x for x in names):
        raise DataContractError(
            f"{path}: {what} {list(names)} are invalid; expected unique, non-empty names without '/'")


def _expect_shape(path, name: str, shape: tuple, expected: tuple, meaning: str) -> None:
    if tuple(shape) != tuple(expected):
        raise DataContractError(
            f"{path}: dataset '{name}' has shape {tuple(shape)}; expected {tuple(expected)} = {meaning}")


# ----------------------------------------------------------------------------- attributes


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


def _py(value):
    """HDF5 attributes come back as numpy scalars/arrays or bytes; hand callers plain Python values."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_py(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------- writing


def _tmp_path(path: Path) -> Path:
    """Same directory as the target, so the final os.replace is an atomic rename."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


class SplitWriter:
    """Stream one split into a new HDF5 file, block of rows by block of rows.

    ``flux`` and ``error`` are preallocated contiguous and uncompressed. Everything goes to a
    temporary file next to `path`, renamed onto `path` only once every row has been written, so an
    exception or a crash never leaves a partial file where the workflow expects a finished one.
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
        self._tmp = _tmp_path(self.path)
        self._file = None

    def _validate_setup(self) -> None:
        if self.n < 1:
            raise DataContractError(f"{self.path}: split has n={self.n} rows; expected at least one spectrum")
        _check_wave(self.path, self.wave)
        _check_names(self.path, self.label_names, "label names")
        if REQUIRED_LABEL not in self.label_names:
            raise DataContractError(
                f"{self.path}: label names {list(self.label_names)} lack '{REQUIRED_LABEL}'; expected it among them")
        if self.jacobian_labels is not None:
            _check_names(self.path, self.jacobian_labels, "jacobian labels")
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file = self._create()
        except BaseException:
            self._discard()
            raise
        return self

    def _create(self) -> h5py.File:
        f = h5py.File(self._tmp, "w")
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
        _expect_shape(self.path, "flux", flux.shape, (rows, p), "[rows, len(wave)]")
        _expect_shape(self.path, "error", error.shape, (rows, p), "[rows, len(wave)]")
        _check_values(self.path, "flux", flux, start)
        _check_values(self.path, "error", error, start, positive=True)
        if set(labels) != set(self.label_names):
            raise DataContractError(f"{self.path}: block labels {sorted(labels)} differ from the label names "
                                    f"{sorted(self.label_names)}; expected exactly those")
        label_arrays = {name: np.asarray(labels[name], dtype=np.float32) for name in self.label_names}
        for name, values in label_arrays.items():
            _expect_shape(self.path, f"labels/{name}", values.shape, (rows,), "[rows]")
            _check_values(self.path, f"labels/{name}", values, start)
        if (jacobian is None) != (self.jacobian_labels is None):
            state = "missing" if jacobian is None else "unexpected"
            raise DataContractError(f"{self.path}: dataset 'jacobian' block is {state}; "
                                    "expected one exactly when jacobian_labels were given")
        if jacobian is not None:
            jacobian = np.asarray(jacobian, dtype=np.float32)
            _expect_shape(self.path, "jacobian", jacobian.shape, (rows, p, len(self.jacobian_labels)),
                          "[rows, len(wave), len(jacobian_labels)]")
            _check_values(self.path, "jacobian", jacobian, start)
            self._file["jacobian"][start:stop] = jacobian
        self._file["flux"][start:stop] = flux
        self._file["error"][start:stop] = error
        for name, values in label_arrays.items():
            self._file["labels"][name][start:stop] = values
        self._written[start:stop] = True

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._file.close()
            if exc_type is None:
                self._commit()
        finally:
            self._file = None
            self._discard()

    def _commit(self) -> None:
        missing = np.flatnonzero(~self._written)
        if missing.size:
            raise DataContractError(f"{self.path}: {missing.size} of {self.n} rows were never written "
                                    f"(first missing row {missing[0]}); expected every row written")
        if self.path.exists() and not self.overwrite:
            raise FileExistsError(f"{self.path} appeared while writing; pass overwrite=True to replace it")
        os.replace(self._tmp, self.path)

    def _discard(self) -> None:
        self._tmp.unlink(missing_ok=True)


def write_split(path, wave, flux, error, labels: dict, attrs: dict, jacobian=None,
                jacobian_labels: list[str] | None = None, overwrite: bool = False) -> None:
    """Write a whole split at once (small files, tests, imports of in-memory data)."""
    with SplitWriter(path, len(flux), wave, list(labels), attrs, jacobian_labels, overwrite) as writer:
        writer.write(0, flux, error, labels, jacobian)


# ----------------------------------------------------------------------------- reading


@contextmanager
def _open(path: Path):
    """Open read-only, turning a missing, empty, non-HDF5 or damaged file into a DataContractError
    instead of an h5py traceback."""
    if not path.is_file():
        raise DataContractError(f"{path}: file does not exist; expected an HDF5 split file")
    if path.stat().st_size == 0:
        raise DataContractError(
            f"{path}: file is empty (0 bytes); expected an HDF5 split file (was it written completely?)")
    if not h5py.is_hdf5(path):
        raise DataContractError(f"{path}: not an HDF5 file (no HDF5 signature); expected an HDF5 split file")
    try:
        with h5py.File(path, "r") as f:
            yield f
    except OSError as e:
        raise DataContractError(f"{path}: HDF5 file cannot be read ({e}); expected a complete file "
                                "(it may be truncated or damaged: regenerate it)") from e


def _dataset(f: h5py.File, path, name: str, dtype, ndim: int) -> h5py.Dataset:
    """Fetch a required dataset, checking presence, dtype and number of dimensions."""
    dset = f.get(name)
    if not isinstance(dset, h5py.Dataset):
        raise DataContractError(
            f"{path}: dataset '{name}' is missing; expected {np.dtype(dtype).name} with {ndim} dimension(s)")
    if dset.dtype != dtype or dset.ndim != ndim:
        raise DataContractError(f"{path}: dataset '{name}' is {dset.dtype} with {dset.ndim} dimension(s); "
                                f"expected {np.dtype(dtype).name} with {ndim} dimension(s)")
    return dset


def _label_names(f: h5py.File, path) -> tuple[str, ...]:
    """The label order is the file's `label_names` attribute when present (user files may omit it),
    else the sorted members of labels/. Listed labels that lack a dataset are reported by _dataset."""
    group = f.get("labels")
    members = sorted(group.keys()) if isinstance(group, h5py.Group) else []
    names = _py(f.attrs.get("label_names", members))
    names = tuple([names] if isinstance(names, str) else names)
    if REQUIRED_LABEL not in names:
        raise DataContractError(
            f"{path}: dataset 'labels/{REQUIRED_LABEL}' is missing; expected float32 [N] target labels")
    unlisted = [f"labels/{x}" for x in members if x not in names]
    if unlisted:
        raise DataContractError(f"{path}: datasets {unlisted} are not in attribute 'label_names' {list(names)}; "
                                "expected every label listed there")
    return names


def _jacobian_labels(f: h5py.File, path, label_names: tuple[str, ...], n: int, p: int) -> tuple[str, ...]:
    if "jacobian" not in f:
        return ()
    jac = _dataset(f, path, "jacobian", np.float32, 3)
    names = _py(jac.attrs.get("jacobian_labels"))
    names = tuple([names] if isinstance(names, str) else names or ())
    unknown = [x for x in names if x not in label_names]
    if not names or unknown:
        raise DataContractError(f"{path}: dataset 'jacobian' has attribute 'jacobian_labels' = {list(names)}; "
                                f"expected a non-empty list of names from labels/ {list(label_names)}")
    _expect_shape(path, "jacobian", jac.shape, (n, p, len(names)), "[N, len(wave), len(jacobian_labels)]")
    return names


def validate_file(path, check_values: bool = True, block_rows: int = 4096) -> SplitInfo:
    """Check a split file against the contract and describe it.

    Structure (datasets, dtypes, shapes, wave grid, schema version) is always checked; with
    `check_values`, flux/error/labels/jacobian values are scanned in blocks of `block_rows` rows so
    memory stays bounded on 1M x 4096 files.
    """
    path = Path(path)
    with _open(path) as f:
        wave = _dataset(f, path, "wave", np.float64, 1)[()]
        _check_wave(path, wave)
        p = wave.size
        flux = _dataset(f, path, "flux", np.float32, 2)
        error = _dataset(f, path, "error", np.float32, 2)
        n = flux.shape[0]
        if n < 1:
            raise DataContractError(f"{path}: dataset 'flux' has 0 rows; expected at least one spectrum")
        pixels = f"[N, P] with P = {p}, the length of dataset 'wave'"
        _expect_shape(path, "flux", flux.shape, (n, p), pixels)
        _expect_shape(path, "error", error.shape, (n, p), pixels + ", N like flux")
        label_names = _label_names(f, path)
        labels = {x: _dataset(f, path, f"labels/{x}", np.float32, 1) for x in label_names}
        for name, dset in labels.items():
            _expect_shape(path, f"labels/{name}", dset.shape, (n,), "[N] like flux")
        jacobian_labels = _jacobian_labels(f, path, label_names, n, p)
        attrs = {k: _py(v) for k, v in f.attrs.items()}
        if attrs.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise DataContractError(f"{path}: attribute 'schema_version' is {attrs['schema_version']!r}; "
                                    f"expected {SCHEMA_VERSION}, the version this specvit reads")
        if check_values:
            for name, dset in labels.items():
                _check_values(path, f"labels/{name}", dset[()], 0)
            for start in range(0, n, block_rows):
                rows = slice(start, start + block_rows)
                _check_values(path, "flux", flux[rows], start)
                _check_values(path, "error", error[rows], start, positive=True)
            if jacobian_labels:
                step = max(1, block_rows // len(jacobian_labels))  # same memory per block as flux
                for start in range(0, n, step):
                    _check_values(path, "jacobian", f["jacobian"][start:start + step], start)
    return SplitInfo(path=path, n=n, n_pixels=p, label_names=label_names, wave_min=float(wave[0]),
                     wave_max=float(wave[-1]), has_jacobian=bool(jacobian_labels), attrs=attrs,
                     jacobian_labels=jacobian_labels)


def read_wave(path) -> np.ndarray:
    """Wavelength grid in Å, float64 [P]."""
    path = Path(path)
    with _open(path) as f:
        return _dataset(f, path, "wave", np.float64, 1)[()]


def read_labels(path, names=None) -> dict[str, np.ndarray]:
    """Labels as float32 [N] arrays, in the file's label order (or the order of `names`)."""
    path = Path(path)
    with _open(path) as f:
        names = _label_names(f, path) if names is None else tuple(names)
        return {x: _dataset(f, path, f"labels/{x}", np.float32, 1)[()] for x in names}


def _row_selection(rows):
    """h5py fancy indexing needs sorted unique indices; say so instead of failing inside h5py."""
    if rows is None:
        return slice(None)
    if isinstance(rows, slice):
        return rows
    idx = np.asarray(rows)
    if idx.ndim != 1 or idx.dtype.kind not in "iu" or np.any(np.diff(idx) <= 0) or np.any(idx < 0):
        raise ValueError("rows must be a 1-D array of sorted unique non-negative integer indices, "
                         f"a slice or None; got {rows!r:.80}")
    return idx.astype(np.int64)


def read_arrays(path, rows=None) -> tuple[np.ndarray, np.ndarray]:
    """(flux, error) as float32 [n, P] for `rows` (sorted int indices, a slice, or None for all)."""
    path = Path(path)
    sel = _row_selection(rows)
    with _open(path) as f:
        flux = _dataset(f, path, "flux", np.float32, 2)
        error = _dataset(f, path, "error", np.float32, 2)
        return flux[sel], error[sel]


# ----------------------------------------------------------------------------- training subsets


def make_nested_subsets(n_pool: int, sizes, seed: int, source=None) -> dict[int, np.ndarray]:
    """Sorted int64 row indices for each training-set size, from one seeded permutation of the pool.

    Subset N is the first N entries of the permutation, so every smaller subset is contained in
    every larger one: a learning curve then measures more data, not different data.
    """
    where = f" in {source}" if source is not None else ""
    sizes = [operator.index(s) for s in sizes]
    for size in sizes:
        if size < 1:
            raise ValueError(
                f"subset N={size} is smaller than 1; expected 1 <= N <= {n_pool}, the training pool{where}")
        if size > n_pool:
            raise ValueError(f"subset N={size} is larger than the training pool of {n_pool} spectra{where}")
    order = np.random.default_rng(seed).permutation(n_pool)
    return {size: np.sort(order[:size]).astype(np.int64) for size in sizes}


def save_subset(path, idx) -> None:
    """Save row indices as .npy via a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(idx, dtype=np.int64))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_subset(path) -> np.ndarray:
    """Row indices saved by save_subset, checked to be usable as read_arrays rows."""
    idx = np.load(Path(path))
    try:
        return _row_selection(idx)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
