"""The HDF5 data contract: one file per split, how it is read and validated.

Every stage (generation, training, baselines, ceilings) reaches data only through this module
(and ``specvit.data.writer``, which writes files in it), so user-supplied files and the built-in
synthetic generator are interchangeable, and a malformed file fails once, early, with a message
that names the file, the dataset, the problem and what was expected (see docs/data.md,
"Data contract").

Layout: ``wave`` [P]; ``flux``, ``error`` [N, P]; ``labels/<name>`` [N] (``logg`` required);
optional ``jacobian`` [N, P, K] with attribute ``jacobian_labels``. The writer stores float64 wave
and float32 for the rest, contiguous and uncompressed (random 256-row batches read ~18x faster
than from chunked datasets, and compression saves almost nothing on noisy spectra). Files from
elsewhere may hold any real floating-point type in either byte order (and integers for ``wave``
and the labels): the readers convert while reading, once, to float64 wave and float32 for the
rest; other types are refused with a message that says how to convert them.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from specvit.data.values import FLOATS, NUMBERS, ValueScan, expected_type, read_as, unsupported_type

SCHEMA_VERSION = 1
REQUIRED_LABEL = "logg"


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
    stored_dtypes: dict = field(default_factory=dict)  # {dataset: dtype as stored}, e.g. {'flux': '>f8'}


# ----------------------------------------------------------------------------- checks


def check_wave(path, wave: np.ndarray) -> None:
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


def check_block_values(path, name: str, block: np.ndarray, row0: int, positive: bool = False) -> None:
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


def check_names(path, names: tuple[str, ...], what: str) -> None:
    """Label names become HDF5 paths (labels/<name>), so they must be unique, non-empty and slash-free."""
    if len(set(names)) != len(names) or any(not isinstance(x, str) or not x or "/" in x for x in names):
        raise DataContractError(
            f"{path}: {what} {list(names)} are invalid; expected unique, non-empty names without '/'")


def expect_shape(path, name: str, shape: tuple, expected: tuple, meaning: str) -> None:
    if tuple(shape) != tuple(expected):
        raise DataContractError(
            f"{path}: dataset '{name}' has shape {tuple(shape)}; expected {tuple(expected)} = {meaning}")


# ----------------------------------------------------------------------------- attributes


def _py(value):
    """HDF5 attributes come back as numpy scalars/arrays or bytes; hand callers plain Python values."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_py(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------- reading


@contextmanager
def _open(path: Path):
    """Open read-only, turning a missing, empty, non-HDF5 or damaged file into a DataContractError
    instead of an h5py traceback."""
    if path.is_dir():
        raise DataContractError(f"{path}: is a directory; expected an HDF5 split file")
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


def _dataset(f: h5py.File, path, name: str, ndim: int, kinds: str = FLOATS) -> h5py.Dataset:
    """Fetch a required dataset, checking presence, type and number of dimensions."""
    dset = f.get(name)
    if not isinstance(dset, h5py.Dataset):
        raise DataContractError(
            f"{path}: dataset '{name}' is missing; expected {expected_type(kinds)} with {ndim} dimension(s)")
    if dset.dtype.kind not in kinds:
        raise DataContractError(f"{path}: {unsupported_type(name, dset.dtype, kinds)}")
    if dset.ndim != ndim:
        raise DataContractError(f"{path}: dataset '{name}' has {dset.ndim} dimension(s) (shape {dset.shape}); "
                                f"expected {ndim} dimension(s)")
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
            f"{path}: dataset 'labels/{REQUIRED_LABEL}' is missing; expected [N] target labels")
    unlisted = [f"labels/{x}" for x in members if x not in names]
    if unlisted:
        raise DataContractError(f"{path}: datasets {unlisted} are not in attribute 'label_names' {list(names)}; "
                                "expected every label listed there")
    return names


def _jacobian_labels(f: h5py.File, path, label_names: tuple[str, ...], n: int, p: int) -> tuple[str, ...]:
    if "jacobian" not in f:
        return ()
    jac = _dataset(f, path, "jacobian", 3)
    names = _py(jac.attrs.get("jacobian_labels"))
    names = tuple([names] if isinstance(names, str) else names or ())
    unknown = [x for x in names if x not in label_names]
    if not names or unknown:
        raise DataContractError(f"{path}: dataset 'jacobian' has attribute 'jacobian_labels' = {list(names)}; "
                                f"expected a non-empty list of names from labels/ {list(label_names)}")
    expect_shape(path, "jacobian", jac.shape, (n, p, len(names)), "[N, len(wave), len(jacobian_labels)]")
    return names


def _scan_values(f: h5py.File, path, info: SplitInfo, block_rows: int) -> None:
    """Every value the readers return, in blocks of ``block_rows`` rows (bounded memory on 1M x 4096
    files); one DataContractError lists every problem (``specvit.data.values``)."""
    scan = ValueScan(info.label_names)
    for finding, name in zip(scan.labels, info.label_names):
        finding.scan(read_as(f[f"labels/{name}"], (), np.float32), 0)
    for start in range(0, info.n, block_rows):
        rows = slice(start, start + block_rows)
        scan.spectra(read_as(f["flux"], rows, np.float32), read_as(f["error"], rows, np.float32), start)
    if info.jacobian_labels:
        step = max(1, block_rows // len(info.jacobian_labels))  # same memory per block as flux
        for start in range(0, info.n, step):
            scan.jacobian.scan(read_as(f["jacobian"], slice(start, start + step), np.float32), start)
    problems = scan.problems()
    if len(problems) == 1:
        raise DataContractError(f"{path}: {problems[0]}")
    if problems:
        raise DataContractError(f"{path}: {len(problems)} problems:\n  - " + "\n  - ".join(problems))


def validate_file(path, check_values: bool = True, block_rows: int = 4096) -> SplitInfo:
    """Check a split file against the contract and describe it.

    Structure (datasets, types, shapes, wave grid, schema version) is always checked, reading only
    metadata and ``wave``; with `check_values`, every value the readers return is scanned
    (``_scan_values``).
    """
    path = Path(path)
    with _open(path) as f:
        wave = read_as(_dataset(f, path, "wave", 1, NUMBERS), (), np.float64)
        check_wave(path, wave)
        p = wave.size
        flux = _dataset(f, path, "flux", 2)
        error = _dataset(f, path, "error", 2)
        n = flux.shape[0]
        if n < 1:
            raise DataContractError(f"{path}: dataset 'flux' has 0 rows; expected at least one spectrum")
        pixels = f"[N, P] with P = {p}, the length of dataset 'wave'"
        expect_shape(path, "flux", flux.shape, (n, p), pixels)
        expect_shape(path, "error", error.shape, (n, p), pixels + ", N like flux")
        label_names = _label_names(f, path)
        labels = {x: _dataset(f, path, f"labels/{x}", 1, NUMBERS) for x in label_names}
        for name, dset in labels.items():
            expect_shape(path, f"labels/{name}", dset.shape, (n,), "[N] like flux")
        jacobian_labels = _jacobian_labels(f, path, label_names, n, p)
        attrs = {k: _py(v) for k, v in f.attrs.items()}
        if attrs.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise DataContractError(f"{path}: attribute 'schema_version' is {attrs['schema_version']!r}; "
                                    f"expected {SCHEMA_VERSION}, the version this specvit reads")
        stored = {name: f[name].dtype.str for name in ("wave", "flux", "error", *(f"labels/{x}" for x in labels),
                                                       *(["jacobian"] if jacobian_labels else []))}
        info = SplitInfo(path=path, n=n, n_pixels=p, label_names=label_names, wave_min=float(wave[0]),
                         wave_max=float(wave[-1]), has_jacobian=bool(jacobian_labels), attrs=attrs,
                         jacobian_labels=jacobian_labels, stored_dtypes=stored)
        if check_values:
            _scan_values(f, path, info, block_rows)
    return info


def read_wave(path) -> np.ndarray:
    """Wavelength grid in Å, float64 [P] (converted from the type it is stored in)."""
    path = Path(path)
    with _open(path) as f:
        return read_as(_dataset(f, path, "wave", 1, NUMBERS), (), np.float64)


def read_labels(path, names=None) -> dict[str, np.ndarray]:
    """Labels as float32 [N] arrays, in the file's label order (or the order of `names`)."""
    path = Path(path)
    with _open(path) as f:
        names = _label_names(f, path) if names is None else tuple(names)
        return {x: read_as(_dataset(f, path, f"labels/{x}", 1, NUMBERS), (), np.float32) for x in names}


def row_selection(rows):
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
    """(flux, error) as float32 [n, P] for `rows` (sorted int indices, a slice, or None for all),
    converted from the type they are stored in."""
    path = Path(path)
    sel = row_selection(rows)
    with _open(path) as f:
        flux = _dataset(f, path, "flux", 2)
        error = _dataset(f, path, "error", 2)
        return read_as(flux, sel, np.float32), read_as(error, sel, np.float32)
