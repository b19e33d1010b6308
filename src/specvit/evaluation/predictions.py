"""Predictions on the two test views and the metrics of the paper's tables (P0.4, Table 3, Fig. 1).

Views of the same test stars, both with fixed seeded noise so every model sees identical spectra:

- ``pooled``: each star at its own magnitude, with the file's ``error`` (the 1-sigma at the
  star's own ``mag``); ``mag`` is taken from ``labels/mag`` (NaN when the file has none).
- ``sweep``: every star re-noised at each magnitude of ``mags`` with
  ``pixel_sigma(flux, mag)``, as in the paper's "test_10k_unified_snr" set.

A noisy spectrum is ``flux + noise_level * error * eps``. The draw of each block is seeded from
``(seed, view, round(1000 * mag))`` through ``np.random.SeedSequence``: the noise at one magnitude
depends on its value, not on its position in ``mags``, so adding a magnitude leaves the others'
spectra (and so their metrics) unchanged. The draw covers the whole file and is then selected, so a
star gets the same noise whichever ``rows`` a (slow) model is evaluated on. The SNR recorded per
spectrum is ``||flux|| / ||noise_level * error||``, the SNR of the noise actually added.

Prediction files (HDF5, one per view, written atomically): ``mag`` float32 [M], ``snr`` float32 [M],
``star`` int64 [M] (row in the test file), ``true/<label>`` float32 [M], ``pred/<label>`` float64 [M];
attributes ``view``, ``noise_level``, ``seed``, ``model_name``, ``test_file``, ``labels`` (and ``mags``
for the sweep), and ``r2_variance_<label>``, the R² denominator of each label (its prior variance,
``specvit.evaluation.metrics``) where the evaluation was given one, so every table read from the
file scores R² the same way (``r2_variance``). The sweep stacks its rows magnitude by magnitude,
stars in file order within each.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from specvit.data.contract import read_arrays, read_labels, validate_file
from specvit.runtime.io import atomic_path

VIEWS = ("pooled", "sweep")
SWEEP_MAGS = (18.0, 19.0, 20.0, 20.5, 21.0, 21.5, 22.0, 22.5, 23.0)
R2_VARIANCE = "r2_variance_"  # attribute prefix: the R² denominator of a label
_DTYPES = {"mag": np.float32, "snr": np.float32, "star": np.int64, "true": np.float32, "pred": np.float64}


# ----------------------------------------------------------------------------- test views


def _mag_key(mag: float) -> int:
    """Integer key of a magnitude for seeding: milli-mag, so 20.5 and 20.5000001 share noise."""
    return int(round(float(mag) * 1000)) % (1 << 63)


def block_seed(seed: int, view: str, mag: float | None = None) -> int:
    """Seed of one view block, derived from the magnitude value (not its index in the list)."""
    entropy = [int(seed), VIEWS.index(view)] + ([] if mag is None else [_mag_key(mag)])
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


def _check_view_args(view: str, mags, noise_level: float) -> tuple[float, ...]:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if not (math.isfinite(noise_level) and noise_level >= 0):
        raise ValueError(f"noise_level must be finite and >= 0, got {noise_level}")
    mags = tuple(float(m) for m in np.atleast_1d(np.asarray(mags, dtype=float)))
    if view == "sweep":
        if not mags or not all(math.isfinite(m) for m in mags):
            raise ValueError(f"the sweep needs a non-empty list of finite magnitudes, got {list(mags)}")
        keys = [_mag_key(m) for m in mags]
        if len(set(keys)) != len(keys):
            raise ValueError(f"magnitudes {list(mags)} repeat (to 0.001 mag); each must appear once")
    return mags


def view_inputs(test_path, view: str, mags: Sequence[float] = SWEEP_MAGS, noise_level: float = 1.0,
                seed: int = 0, rows=None) -> Iterator[tuple[float | None, np.ndarray, np.ndarray]]:
    """Yield ``(mag or None, x_noisy float32 [n, P], snr [n])`` blocks of one view of the test file.

    One block (mag None) for ``pooled``; one block per magnitude of ``mags`` for ``sweep``.
    ``rows`` selects test rows as in ``data.read_arrays``. The noise is drawn for the whole file and
    then selected, so a star's noisy spectrum is the same whichever rows a model is evaluated on.
    """
    from specvit.data.loader import fixed_noisy  # torch; kept out of the module so the workflow can read tables
    from specvit.physics.noise import pixel_sigma, snr

    mags = _check_view_args(view, mags, noise_level)
    flux, error = read_arrays(test_path)
    pick = (lambda a: a) if rows is None else (lambda a: a[rows])
    if view == "pooled":
        x = fixed_noisy(flux, error, noise_level, block_seed(seed, view))
        yield None, pick(x), pick(snr(flux, noise_level * error))
        return
    for mag in mags:
        sigma = pixel_sigma(flux, mag).astype(np.float32)
        x = fixed_noisy(flux, sigma, noise_level, block_seed(seed, view, mag))
        yield mag, pick(x), pick(snr(flux, noise_level * sigma))


# ----------------------------------------------------------------------------- predictions


def _truth(test_path, labels, rows) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(row numbers in the file, true labels, each star's own mag or NaN) of the rows read_arrays(rows) reads."""
    info = validate_file(test_path, check_values=False)
    if rows is None or isinstance(rows, slice):
        stars = np.arange(info.n, dtype=np.int64)[rows if rows is not None else slice(None)]
    else:
        stars = np.asarray(rows, dtype=np.int64)
    truth = {k: v[stars] for k, v in read_labels(test_path, labels).items()}
    own_mag = np.full(stars.size, np.nan, dtype=np.float32)
    if "mag" in info.label_names:
        own_mag = read_labels(test_path, ["mag"])["mag"][stars]
    return stars, truth, own_mag


def _labels_to_record(model, test_path, labels) -> tuple[str, ...]:
    """Labels to store: all the model predicts by default; each must be predicted and in the file."""
    labels = tuple(model.labels) if labels is None else ((labels,) if isinstance(labels, str) else tuple(labels))
    not_predicted = [lab for lab in labels if lab not in model.labels]
    if not_predicted:
        raise ValueError(f"labels {not_predicted} are not predicted by the model (it predicts {list(model.labels)})")
    have = validate_file(test_path, check_values=False).label_names
    for lab in labels:
        if lab not in have:
            raise ValueError(f"the model predicts label {lab!r} but test file {test_path} has no labels/{lab} "
                             f"(it has {list(have)}); evaluate on a file with that label or pass labels=...")
    return labels


def _predict(model, x: np.ndarray, labels) -> dict[str, np.ndarray]:
    """model.predict, checked: every recorded label present with one value per row."""
    out = model.predict(x)
    pred = {}
    for lab in labels:
        values = np.asarray(out[lab], dtype=np.float64) if lab in out else None
        if values is None or values.shape != (x.shape[0],):
            raise ValueError(f"model.predict returned no [{x.shape[0]}] array for label {lab!r}")
        pred[lab] = values
    return pred


def _view_table(model, test_path, view, mags, noise_level, seed, labels, rows) -> dict[str, np.ndarray]:
    """All rows of one view as arrays: mag, snr, star, true/<label>, pred/<label>."""
    stars, truth, own_mag = _truth(test_path, labels, rows)
    parts = []
    for mag, x, s in view_inputs(test_path, view, mags, noise_level, seed, rows):
        pred = _predict(model, x, labels)
        block = {"mag": own_mag if mag is None else np.full(stars.size, mag), "snr": s, "star": stars}
        block.update({f"true/{lab}": truth[lab] for lab in labels})
        block.update({f"pred/{lab}": pred[lab] for lab in labels})
        parts.append(block)
    return {key: np.concatenate([p[key] for p in parts]).astype(_DTYPES[key.split("/")[0]]) for key in parts[0]}


def _write_table(path: Path, table: dict[str, np.ndarray], attrs: dict) -> None:
    with h5py.File(path, "w") as f:
        for key, values in table.items():
            f.create_dataset(key, data=values, track_times=False)
        for key, value in attrs.items():
            f.attrs[key] = value


@dataclass(frozen=True)
class ViewSettings:
    """Which views of the test file to predict, and their seeded noise (see the module doc)."""

    mags: Sequence[float] = SWEEP_MAGS  # the sweep's magnitudes
    noise_level: float = 1.0
    seed: int = 0
    views: Sequence[str] = VIEWS
    r2_variances: dict | None = None    # {label: R² denominator}, stored with the predictions


def predict_views(model, test_path, out_dir=".", *, views: ViewSettings = ViewSettings(), labels=None,
                  rows=None) -> dict[str, Path]:
    """Predict every view of the test file and write ``out_dir/predictions_<view>.h5``.

    All predictions are made before anything is written, and all files are renamed into place only
    after every one was written, so a failing model or write leaves no predictions file behind.
    Returns {view: path}.
    """
    test_path, out_dir = Path(test_path), Path(out_dir)
    mags, noise_level, seed = views.mags, views.noise_level, views.seed
    labels = _labels_to_record(model, test_path, labels)
    for view in views.views:
        _check_view_args(view, mags, noise_level)
    tables = {view: _view_table(model, test_path, view, mags, noise_level, seed, labels, rows)
              for view in views.views}
    paths = {view: out_dir / f"predictions_{view}.h5" for view in views.views}
    with ExitStack() as stack:
        for view, table in tables.items():
            attrs = {"view": view, "noise_level": float(noise_level), "seed": int(seed),
                     "model_name": getattr(model, "name", "") or type(model).__name__,
                     "test_file": str(test_path), "labels": list(labels)}
            if view == "sweep":
                attrs["mags"] = np.asarray(mags, dtype=np.float64)
            attrs.update({f"{R2_VARIANCE}{lab}": float(v) for lab, v in (views.r2_variances or {}).items()
                          if lab in labels})
            _write_table(stack.enter_context(atomic_path(paths[view])), table, attrs)
    return paths


def read_predictions(path) -> pd.DataFrame:
    """A prediction file as a DataFrame: ``star, mag, snr, true_<label>, pred_<label>``;
    the file attributes are in ``df.attrs``."""
    with h5py.File(path, "r") as f:
        labels = [x.decode() if isinstance(x, bytes) else str(x) for x in f.attrs["labels"]]
        cols = {"star": f["star"][()], "mag": f["mag"][()], "snr": f["snr"][()]}
        cols.update({f"true_{lab}": f[f"true/{lab}"][()] for lab in labels})
        cols.update({f"pred_{lab}": f[f"pred/{lab}"][()] for lab in labels})
        attrs = {k: (v.decode() if isinstance(v, bytes) else v.tolist() if isinstance(v, np.ndarray) else
                     v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    df = pd.DataFrame(cols)
    df.attrs.update(attrs)
    return df


# ----------------------------------------------------------------------------- metrics


def r2_variance(predictions: pd.DataFrame, label: str) -> float | None:
    """The R² denominator stored with predictions read by ``read_predictions`` (None if there is none)."""
    value = predictions.attrs.get(f"{R2_VARIANCE}{label}")
    return None if value is None else float(value)
