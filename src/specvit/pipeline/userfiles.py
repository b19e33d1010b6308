"""What cannot apply to the user's own files (``data.source: hdf5``), found before any job runs.

Only cheap metadata of the files is read: the label names and the wavelength grid. What each part
of the workflow needs from them:

* every run group (``runs`` and the ablations' variants): its ``labels`` in the train, val and test
  files (training targets, validation and test truth);
* a ``template`` group: the forward model's own wavelength grid, since it fits model spectra;
* the pre-train -> fine-tune study (``pretrain``): the five labels in the train and val files (the
  pre-training predicts all of them);
* the domain-shift study: the shifts ``lsf`` and ``loggf`` regenerate the spectra with the forward
  model, so the files they shift (the test file; the train and val files too when a ViT is
  fine-tuned) need the five labels, each star's ``mag`` and the forward model's grid;
* the attribution study needs only a ViT run: without the five labels it leaves out the
  correlation with d flux / d log g, without Teff the star groups, and lines outside the grid;
* ``eval.external`` files: the training wavelength grid.

Besides, the cheap part of the data contract is checked here for every file, so that no job
starts on a file that breaks it: its structure (datasets, types, shapes, a non-empty file, an
increasing wavelength grid: ``specvit.data.contract.validate_file`` without the value scan), one
wavelength grid shared by the train, val and test files (``same_grid``), and a training file with
at least as many rows as the largest training subset. The values (NaN, Inf, error <= 0, constant
spectra) are scanned by the ``validate_split`` job of each split, which every job that reads the
split waits for.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specvit.physics.grid import N_PIXELS, WAVE_START, WAVE_STEP
from specvit.physics.labels import LABEL_NAMES

SPLITS = ("train", "val", "test")
FORWARD_SHIFTS = ("lsf", "loggf")  # specvit.studies.shifts.FORWARD_SHIFTS (that module imports torch)


@dataclass(frozen=True)
class FileMeta:
    """The label names and wavelength grid of one HDF5 split file."""

    key: str            # the config key that names the file, e.g. data.train
    path: str
    labels: tuple[str, ...]
    wave: np.ndarray
    n: int = 0          # rows (spectra)

    def where(self) -> str:
        return f"{self.key} ({self.path})"


def builtin_wave() -> np.ndarray:
    """The forward model's wavelength grid (``specvit.physics.spectrum.pfs_red_wave``, without torch)."""
    return WAVE_START + WAVE_STEP * np.arange(N_PIXELS, dtype=np.float64)


def grid_text(wave: np.ndarray) -> str:
    return f"{wave.size} pixels, {wave[0]:.2f}-{wave[-1]:.2f} Å"


def grid_tolerance(ref: np.ndarray) -> float:
    """Two grids agree where their wavelengths differ by at most 1e-6 of the longest one (0.009 Å at
    8,850 Å: float32 rounding passes, a shift of a hundredth of a pixel does not)."""
    return 1e-6 * float(np.max(np.abs(ref)))


def same_grid(wave: np.ndarray, ref: np.ndarray) -> bool:
    return wave.shape == ref.shape and bool(np.allclose(wave, ref, rtol=0, atol=grid_tolerance(ref)))


def read_meta(key: str, path) -> FileMeta:
    """Label names, grid and row count of the file at ``path``, its structure checked (no scan of
    the arrays); DataContractError names the file and what breaks the contract."""
    from specvit.data.contract import read_wave, validate_file

    info = validate_file(path, check_values=False)
    return FileMeta(key, str(path), tuple(info.label_names), read_wave(path), info.n)


def path_message(key: str, path) -> str | None:
    """Why the file a config key names cannot be read at all (missing, a folder), or None."""
    if Path(path).is_dir():
        return f"config key '{key}': {str(path)!r} is a directory; expected an HDF5 split file"
    if not Path(path).is_file():
        return f"config key '{key}': file {str(path)!r} does not exist"
    return None


def read_user_files(config: dict) -> tuple[dict[str, FileMeta], list[str]]:
    """({split: FileMeta} of the user's files that keep the contract's structure, the problems of the
    others, each with its config key). None of either for synthetic data; files that do not exist
    are left to ``path_message``."""
    from specvit.data.contract import DataContractError

    files, msgs = {}, []
    if config["data"]["source"] != "hdf5":
        return files, msgs
    for split in SPLITS:
        path = config["data"][split]
        if path_message(f"data.{split}", path) is None:
            try:
                files[split] = read_meta(f"data.{split}", path)
            except (DataContractError, OSError) as e:  # OSError: e.g. a file we may not read
                msgs.append(f"config key 'data.{split}': {e}")
    return files, msgs


def _grid_difference(meta: FileMeta, ref: FileMeta) -> str | None:
    """How the grid of ``meta`` differs from the training file's ``ref``, or None."""
    if meta.wave.shape != ref.wave.shape:
        return f"{meta.where()} has {grid_text(meta.wave)} but {ref.where()} has {grid_text(ref.wave)}"
    tol = grid_tolerance(ref.wave)
    off = np.flatnonzero(np.abs(meta.wave - ref.wave) > tol)
    if not off.size:
        return None
    i = int(off[0])
    return (f"{meta.where()} and {ref.where()} have different wavelength grids: the first differing pixel is "
            f"{i} ({meta.wave[i]:.4f} Å in {meta.key}, {ref.wave[i]:.4f} Å in {ref.key}; {off.size} of "
            f"{ref.wave.size} pixels differ by more than the tolerance of {tol:.2g} Å)")


def split_messages(config: dict, files: dict[str, FileMeta]) -> list[str]:
    """What the train, val and test files must share: one wavelength grid, and enough training rows
    for every subset (and for the pre-training study's fine-tuning sets)."""
    if "train" not in files:
        return []  # the training file's own problem is reported
    train, out = files["train"], []
    for split in ("val", "test"):
        diff = _grid_difference(files[split], train) if split in files else None
        if diff:
            out.append(f"config key 'data.{split}': {diff}; expected the training file's wavelength grid in "
                       "every split: resample the spectra onto one grid")
    sizes = [("data.subsets", max(config["data"]["subsets"]))]
    if config["pretrain"]["enabled"]:
        sizes.append(("pretrain.n_finetune", max(config["pretrain"]["n_finetune"])))
    for key, n in sizes:
        if n > train.n:
            out.append(f"config key '{key}' has N={n}, more than the {train.n} spectra of {train.where()}; "
                       "expected N <= the rows of the training file")
    return out


def _lacking(files, needed) -> list[str]:
    """'data.train (a.h5) lacks ['Teff']' for each file without all of ``needed``."""
    out = []
    for meta in files:
        missing = [x for x in needed if x not in meta.labels]
        if missing:
            out.append(f"{meta.where()} lacks {missing} (its labels: {list(meta.labels)})")
    return out


def _off_grid(files) -> list[str]:
    ref = builtin_wave()
    return [f"{m.where()} has {grid_text(m.wave)}" for m in files if not same_grid(m.wave, ref)]


def group_messages(groups, files: dict[str, FileMeta]) -> list[str]:
    """Problems of run groups on the user's files. ``groups``: (name, model, labels, where declared,
    how to turn it off), e.g. ('template', 'template', ('logg',), 'runs[3]', "remove it from 'runs'")."""
    out = []
    all_files = [files[s] for s in SPLITS if s in files]
    for name, model, labels, where, off in groups:
        problems = _lacking(all_files, labels)
        off_grid = _off_grid(all_files) if model == "template" else []
        if off_grid:
            problems.append(f"the template fit needs the forward model's grid ({grid_text(builtin_wave())}), but "
                            + ", ".join(off_grid))
        if problems:
            out.append(f"run group '{name}' ({where}) predicts {list(labels)}: {'; '.join(problems)}; {off}")
    return out


def study_messages(config: dict, files: dict[str, FileMeta], *, shift_models: dict, shift_vit_run) -> list[str]:
    """Problems of the enabled studies on the user's files, each with the key that turns the study off."""
    out = []
    if config["pretrain"]["enabled"]:
        problems = _lacking([files[s] for s in ("train", "val") if s in files], LABEL_NAMES)
        if problems:
            out.append(f"the pre-train -> fine-tune study pre-trains on the five labels {list(LABEL_NAMES)}: "
                       f"{'; '.join(problems)}; turn it off with 'pretrain.enabled: false'")
    ds = config["domain_shift"]
    forward = [s for s in FORWARD_SHIFTS if any(float(v) != 0 for v in ds["severities"].get(s, []))]
    if ds["enabled"] and shift_models and forward:
        shifted = [files[s] for s in (("train", "val", "test") if shift_vit_run else ("test",)) if s in files]
        problems = _lacking(shifted, (*LABEL_NAMES, "mag")) + _off_grid(shifted)
        if problems:
            out.append(f"the domain-shift study's shifts {forward} regenerate the spectra with the forward model, "
                       f"which needs the five labels and 'mag' on its grid ({grid_text(builtin_wave())}): "
                       f"{'; '.join(problems)}; turn it off with 'domain_shift.enabled: false'")
    return out


def external_messages(config: dict, files: dict[str, FileMeta]) -> list[str]:
    """External test files (``eval.external``) that break the contract's structure or lie on another
    grid than the training data's (a file that does not exist is reported by the studies' check)."""
    from specvit.data.contract import DataContractError

    if config["data"]["source"] == "hdf5":
        if "train" not in files:
            return []  # the training file cannot be read: that is reported
        ref = files["train"].wave
    else:
        ref = builtin_wave()
    out = []
    for path in config["eval"]["external"]:
        if path_message("eval.external", path) is not None:
            continue
        try:
            meta = read_meta("eval.external", path)
        except (DataContractError, OSError) as e:
            out.append(f"config key 'eval.external': {e}")
            continue
        if not same_grid(meta.wave, ref):
            out.append(f"config key 'eval.external': {path} has a wavelength grid of {grid_text(meta.wave)}; "
                       f"expected the training grid of {grid_text(ref)}: resample it first")
    return out
