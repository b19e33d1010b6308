"""The values of a split file (``specvit.data.contract``): the types the readers accept and
convert, and the full scan of ``validate_file``, whose messages give the file's own row numbers.

Types: ``flux``, ``error`` and ``jacobian`` may be stored as any real floating-point type (float16,
float32, float64, either byte order), ``wave`` and the labels as integers too; the readers convert
while reading (``read_as``) to float64 wave and float32 for the rest, the model's input type. Other
types (booleans, complex numbers, strings, records, integer flux) are refused with the conversion
to make.

What is checked, on the values the readers return (float32 flux, error, labels and jacobian, so a
float64 value beyond float32's range counts as infinite and a positive error that rounds to 0 as
zero):

* ``flux``: finite; no constant row (every pixel the same value, e.g. all zero: a blank or
  masked spectrum carries no information);
* ``error``: finite and > 0 (it is the 1-sigma noise the models are trained and scored with);
* every ``labels/<name>`` dataset: finite (labels are targets, test truth, each star's magnitude
  or its group in a study);
* ``jacobian``: finite.

Every problem of the file is counted over all rows and reported at once: how many values, in
which rows (the first ``MAX_ROWS`` of them) and the first bad pixel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_ROWS = 10       # rows listed per problem; the count covers all of them
FLOATS = "f"        # dtype kinds of flux, error and jacobian: floating point of any precision and byte order
NUMBERS = "fiu"     # of wave and the labels: integers too (they convert exactly)
_KIND_NAMES = {"b": "booleans", "i": "integers", "u": "unsigned integers", "c": "complex numbers",
               "S": "byte strings", "U": "strings", "O": "objects", "V": "compound records"}


def expected_type(kinds: str) -> str:
    return ("real numbers (floating point of any precision, or integers; either byte order)" if "i" in kinds
            else "real floating-point values (float16, float32 or float64; either byte order)")


def unsupported_type(name: str, dtype: np.dtype, kinds: str) -> str:
    """Why dataset ``name`` of type ``dtype`` cannot be read, and the conversion that fixes it."""
    fix = "values.real.astype('float32')" if dtype.kind == "c" else "np.asarray(values, dtype='float32')"
    note = "; integer flux or noise is not a continuum-normalised spectrum: normalise it first" \
        if dtype.kind in "iu" else ""
    return (f"dataset '{name}' is {dtype} ({_KIND_NAMES.get(dtype.kind, 'not numbers')}); expected "
            f"{expected_type(kinds)}: store it as float32, e.g. with h5py in a new file: "
            f"f.create_dataset('{name}', data={fix}){note}")


def read_as(dset, sel, dtype) -> np.ndarray:
    """``dset[sel]`` of an h5py dataset as native ``dtype``: HDF5 converts while it reads (no
    second copy in memory); a dataset stored in that type already is read as it is."""
    if dset.dtype == np.dtype(dtype):
        return dset[sel]
    return dset.astype(dtype)[sel]


@dataclass
class Finding:
    """One kind of problem of one dataset, tallied block by block over the whole file."""

    dataset: str
    what: str           # e.g. "non-finite values"
    expected: str       # e.g. "finite values"
    count: int = 0
    n_rows: int = 0
    rows: list[int] = field(default_factory=list)
    first: tuple[int, ...] = ()
    detail: str = ""    # e.g. "(1 NaN, 0 Inf)", filled by the caller

    def add(self, mask: np.ndarray, row0: int) -> None:
        """Count the True entries of ``mask`` ([rows] or [rows, pixels, ...]) of rows row0.. ."""
        if not mask.any():
            return
        per_row = mask.reshape(mask.shape[0], -1).any(axis=1)
        bad_rows = row0 + np.flatnonzero(per_row)
        if not self.first:
            pos = np.unravel_index(int(np.flatnonzero(mask)[0]), mask.shape)
            self.first = (pos[0] + row0, *pos[1:])
        self.count += int(mask.sum())
        self.n_rows += int(bad_rows.size)
        self.rows += [int(r) for r in bad_rows[:MAX_ROWS - len(self.rows)]]

    def message(self) -> str:
        rows = ", ".join(map(str, self.rows)) + (f", ... ({self.n_rows} rows)" if self.n_rows > len(self.rows) else "")
        where = ", ".join(f"{axis} {i}" for axis, i in zip(("row", "pixel", "label"), self.first))
        count = f"{self.count} {self.what}" + (f" {self.detail}" if self.detail else "")
        first = f" (first at {where})" if len(self.first) > 1 else ""
        return (f"dataset '{self.dataset}' has {count} in row{'s' if self.n_rows > 1 else ''} {rows}{first}; "
                f"expected {self.expected}")


class NonFinite(Finding):
    """NaN and Inf, with the split of the two in the message."""

    def __init__(self, dataset: str, expected: str = "finite values"):
        super().__init__(dataset, "non-finite values", expected)
        self.n_nan = 0

    def scan(self, block: np.ndarray, row0: int) -> None:
        bad = ~np.isfinite(block)
        self.n_nan += int(np.isnan(block).sum())
        self.add(bad, row0)
        self.detail = f"({self.n_nan} NaN, {self.count - self.n_nan} Inf)"


class ValueScan:
    """The tallies of one file, fed block by block; ``problems()`` gives one message per problem found."""

    def __init__(self, label_names):
        self.flux = NonFinite("flux")
        self.constant = Finding("flux", "constant rows", "spectra that vary across pixels: remove these rows")
        self.error = NonFinite("error")
        self.not_positive = Finding("error", "values <= 0", "strictly positive 1-sigma noise")
        self.labels = [NonFinite(f"labels/{name}", "finite labels") for name in label_names]
        self.jacobian = NonFinite("jacobian")

    def spectra(self, flux: np.ndarray, error: np.ndarray, row0: int) -> None:
        """Rows row0.. of flux and error."""
        self.flux.scan(flux, row0)
        # a NaN row compares False: it counts as non-finite only; a one-pixel spectrum is constant by nature
        flat = (flux.min(axis=1) == flux.max(axis=1)) & (flux.shape[1] > 1)
        if flat.any() and not self.constant.first:
            r = int(np.flatnonzero(flat)[0])
            self.constant.detail = f"(every pixel the same value; row {row0 + r}: all {flux[r, 0]:g})"
        self.constant.add(flat, row0)
        self.error.scan(error, row0)
        with np.errstate(invalid="ignore"):
            self.not_positive.add(error <= 0, row0)

    def problems(self) -> list[str]:
        findings = [self.flux, self.constant, self.error, self.not_positive, *self.labels, self.jacobian]
        return [f.message() for f in findings if f.count]
