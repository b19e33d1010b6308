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

A file that cannot be read is not reported here: its ``validate_split`` job fails with the data
contract's message.
"""
from __future__ import annotations

from dataclasses import dataclass

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

    def where(self) -> str:
        return f"{self.key} ({self.path})"


def builtin_wave() -> np.ndarray:
    """The forward model's wavelength grid (``specvit.physics.spectrum.pfs_red_wave``, without torch)."""
    return WAVE_START + WAVE_STEP * np.arange(N_PIXELS, dtype=np.float64)


def grid_text(wave: np.ndarray) -> str:
    return f"{wave.size} pixels, {wave[0]:.2f}-{wave[-1]:.2f} Å"


def same_grid(wave: np.ndarray, ref: np.ndarray) -> bool:
    return wave.shape == ref.shape and bool(np.allclose(wave, ref, rtol=0, atol=1e-6 * ref.max()))


def read_meta(key: str, path) -> FileMeta | None:
    """Label names and grid of the file at ``path``; None when it cannot be read as a split file."""
    from specvit.data.contract import DataContractError, read_wave, validate_file

    try:
        info = validate_file(path, check_values=False)  # structure only: no scan of the arrays
        return FileMeta(key, str(path), tuple(info.label_names), read_wave(path))
    except (DataContractError, OSError):
        return None


def user_files(config: dict) -> dict[str, FileMeta]:
    """{split: FileMeta} of the readable user files (none for synthetic data)."""
    if config["data"]["source"] != "hdf5":
        return {}
    metas = {s: read_meta(f"data.{s}", config["data"][s]) for s in SPLITS}
    return {s: m for s, m in metas.items() if m is not None}


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
    """External test files (``eval.external``) on another grid than the training data's."""
    if config["data"]["source"] == "hdf5":
        if "train" not in files:
            return []  # the training file cannot be read: its own job says so
        ref = files["train"].wave
    else:
        ref = builtin_wave()
    out = []
    for path in config["eval"]["external"]:
        meta = read_meta("eval.external", path)
        if meta is not None and not same_grid(meta.wave, ref):
            out.append(f"config key 'eval.external': {path} has a wavelength grid of {grid_text(meta.wave)}; "
                       f"expected the training grid of {grid_text(ref)}: resample it first")
    return out
