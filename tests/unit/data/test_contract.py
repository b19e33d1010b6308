"""The HDF5 data contract: round trip, on-disk layout, determinism, validation errors, atomic
writes and nested training subsets."""
import time

import h5py
import numpy as np
import pytest

from specvit.data.contract import (
    SCHEMA_VERSION,
    DataContractError,
    SplitInfo,
    read_arrays,
    read_labels,
    read_wave,
    validate_file,
)
from specvit.data.subsets import load_subset, make_nested_subsets, save_subset
from specvit.data.writer import SplitWriter, write_split

N, P = 6, 8
ATTRS = {"source": "synthetic", "seed": 7, "snr": 50.0, "grid": "bosz", "flag": True}


def arrays(n=N, p=P, seed=0):
    rng = np.random.default_rng(seed)
    wave = np.linspace(6000.0, 9000.0, p)
    flux = rng.uniform(0.5, 1.0, (n, p)).astype(np.float32)
    error = rng.uniform(0.01, 0.1, (n, p)).astype(np.float32)
    labels = {"Teff": rng.uniform(4000, 6000, n).astype(np.float32),
              "logg": rng.uniform(1, 5, n).astype(np.float32)}
    return wave, flux, error, labels


def make_file(path, jacobian=False, **kw):
    wave, flux, error, labels = arrays()
    jac = {"logg": np.ones((N, P), np.float32), "Teff": np.ones((N, P), np.float32)} if jacobian else None
    write_split(path, wave, flux, error, labels, ATTRS, jacobian=jac, **kw)
    return path


def test_round_trip(tmp_path):
    path = make_file(tmp_path / "sub" / "train.h5", jacobian=True)
    wave, flux, error, labels = arrays()
    info = validate_file(path)
    assert isinstance(info, SplitInfo)
    assert (info.n, info.n_pixels, info.label_names) == (N, P, ("Teff", "logg"))
    assert (info.wave_min, info.wave_max) == (6000.0, 9000.0)
    assert info.has_jacobian and info.jacobian_labels == ("logg", "Teff")
    assert info.attrs == {**ATTRS, "schema_version": SCHEMA_VERSION, "label_names": ["Teff", "logg"]}

    assert read_wave(path).dtype == np.float64 and np.array_equal(read_wave(path), wave)
    got = read_labels(path)
    assert list(got) == ["Teff", "logg"] and all(got[k].dtype == np.float32 for k in got)
    assert all(np.array_equal(got[k], labels[k]) for k in labels)
    assert list(read_labels(path, ["logg"])) == ["logg"]

    f, e = read_arrays(path)
    assert f.dtype == e.dtype == np.float32
    assert np.array_equal(f, flux) and np.array_equal(e, error)
    f, e = read_arrays(path, np.array([1, 4]))
    assert np.array_equal(f, flux[[1, 4]]) and np.array_equal(e, error[[1, 4]])
    assert np.array_equal(read_arrays(path, slice(2, 4))[0], flux[2:4])
    with pytest.raises(ValueError, match="sorted unique"):
        read_arrays(path, np.array([4, 1]))


def test_streaming_in_blocks(tmp_path):
    wave, flux, error, labels = arrays()
    with SplitWriter(tmp_path / "s.h5", N, wave, ["Teff", "logg"], ATTRS) as w:
        for start in (4, 0, 2):  # any order
            rows = slice(start, start + 2)
            w.write(start, flux[rows], error[rows], {k: v[rows] for k, v in labels.items()})
    assert np.array_equal(read_arrays(tmp_path / "s.h5")[0], flux)


def test_layout_contiguous_uncompressed(tmp_path):
    path = make_file(tmp_path / "t.h5", jacobian=True)
    with h5py.File(path, "r") as f:
        for name in ("flux", "error", "jacobian"):
            assert f[name].chunks is None and f[name].compression is None


def test_same_inputs_give_identical_bytes(tmp_path):
    a = make_file(tmp_path / "a.h5", jacobian=True)
    time.sleep(1.1)  # HDF5 timestamps have 1 s resolution: they would differ if written
    b = make_file(tmp_path / "b.h5", jacobian=True)
    assert a.read_bytes() == b.read_bytes()


def test_refuses_overwrite(tmp_path):
    path = make_file(tmp_path / "t.h5")
    with pytest.raises(FileExistsError, match="t.h5"):
        make_file(path)
    make_file(path, overwrite=True)


def test_exception_leaves_no_file(tmp_path):
    wave, flux, error, labels = arrays()
    path = tmp_path / "t.h5"
    with pytest.raises(RuntimeError):
        with SplitWriter(path, N, wave, ["Teff", "logg"], ATTRS) as w:
            w.write(0, flux, error, labels)
            raise RuntimeError("generator crashed")
    assert list(tmp_path.iterdir()) == []


def test_incomplete_or_bad_blocks_leave_no_file(tmp_path):
    wave, flux, error, labels = arrays()
    path = tmp_path / "t.h5"
    with pytest.raises(DataContractError, match="never written"):
        with SplitWriter(path, N, wave, ["Teff", "logg"], ATTRS) as w:
            w.write(0, flux[:2], error[:2], {k: v[:2] for k, v in labels.items()})
    error[1, 3] = 0
    with pytest.raises(DataContractError, match=r"'error' has 1 values <= 0 \(first at row 1, pixel 3\)"):
        write_split(path, wave, flux, error, labels, ATTRS)
    assert list(tmp_path.iterdir()) == []


def _drop(name):
    def corrupt(f):
        del f[name]
    return corrupt


def _replace(name, fn):
    def corrupt(f):
        data = fn(f[name][()])
        del f[name]
        f[name] = data
    return corrupt


def _set(name, index, value):
    def corrupt(f):
        f[name][index] = value
    return corrupt


def _wrong_k(f):
    data = f["jacobian"][()]
    del f["jacobian"]
    f["jacobian"] = data[:, :, :1]
    f["jacobian"].attrs["jacobian_labels"] = ["logg", "Teff"]


CORRUPTIONS = {
    "missing flux": (_drop("flux"), "flux"),
    "missing error": (_drop("error"), "error"),
    "missing wave": (_drop("wave"), "wave"),
    "missing logg": (_drop("labels/logg"), "labels/logg"),
    "flux shape": (_replace("flux", lambda a: a[:, :-1]), "flux"),
    "error shape": (_replace("error", lambda a: a[:-1]), "error"),
    "label length": (_replace("labels/Teff", lambda a: a[:-1]), "labels/Teff"),
    "wave length": (_replace("wave", lambda a: np.append(a, a[-1] + 1)), "wave"),
    "flux complex": (_replace("flux", lambda a: a.astype(np.complex64)), "flux"),
    "label strings": (_replace("labels/Teff", lambda a: a.astype("S8")), "labels/Teff"),
    "NaN flux": (_set("flux", (2, 3), np.nan), "flux"),
    "Inf flux": (_set("flux", (5, 0), np.inf), "flux"),
    "zero error": (_set("error", (0, 1), 0.0), "error"),
    "negative error": (_set("error", (3, 7), -1.0), "error"),
    "wave not increasing": (_set("wave", 4, 6000.0), "wave"),
    "NaN jacobian": (_set("jacobian", (1, 2, 1), np.nan), "jacobian"),
    "jacobian wrong K": (_wrong_k, "jacobian"),
    "schema version": (lambda f: f.attrs.__setitem__("schema_version", 99), "schema_version"),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_validation_errors(tmp_path, case):
    corrupt, dataset = CORRUPTIONS[case]
    path = make_file(tmp_path / "bad.h5", jacobian=True)
    with h5py.File(path, "r+") as f:
        corrupt(f)
    with pytest.raises(DataContractError) as err:
        validate_file(path, block_rows=2)
    assert "bad.h5" in str(err.value) and f"'{dataset}'" in str(err.value)


def test_value_error_points_at_first_bad_pixel(tmp_path):
    path = make_file(tmp_path / "bad.h5")
    with h5py.File(path, "r+") as f:
        f["error"][3, 5] = -1.0
        f["error"][4, 0] = 0.0
    with pytest.raises(DataContractError, match=r"'error' has 2 values <= 0 in rows 3, 4 \(first at row 3, pixel 5\); "
                                                 "expected"):
        validate_file(path, block_rows=3)
    validate_file(path, check_values=False)  # structure alone is fine


@pytest.mark.parametrize("content, message", [
    (b"wave,flux\n1,2\n", "not an HDF5 file"),
    (b"", "empty"),
    (None, "truncated"),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.h5"
    if content is None:
        data = make_file(path).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    for read in (validate_file, read_wave, read_labels, read_arrays):
        with pytest.raises(DataContractError, match=message) as err:
            read(path)
        assert "bad.h5" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataContractError, match="nope.h5: file does not exist"):
        validate_file(tmp_path / "nope.h5")


def test_nested_subsets(tmp_path):
    subsets = make_nested_subsets(100, [10, 50, 100], seed=3)
    assert list(subsets) == [10, 50, 100]
    for size, idx in subsets.items():
        assert idx.dtype == np.int64 and len(idx) == size and np.all(np.diff(idx) > 0)
    assert set(subsets[10]) <= set(subsets[50]) <= set(subsets[100]) == set(range(100))
    again = make_nested_subsets(100, [10, 50], seed=3)
    assert all(np.array_equal(again[k], subsets[k]) for k in again)
    assert not np.array_equal(make_nested_subsets(100, [10], seed=4)[10], subsets[10])

    with pytest.raises(ValueError, match="N=5000 is larger than the training pool of 2000 spectra in train.h5"):
        make_nested_subsets(2000, [100, 5000], seed=0, source="train.h5")
    with pytest.raises(ValueError, match="N=0"):
        make_nested_subsets(2000, [0], seed=0)

    path = tmp_path / "subsets" / "n50.npy"
    save_subset(path, subsets[50])
    assert np.array_equal(load_subset(path), subsets[50]) and list(path.parent.iterdir()) == [path]
