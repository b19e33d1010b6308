"""What real files hold: every real floating-point type and byte order (integers for wave and
labels) is read, converted once, into the numbers of the float32 file; other types are refused with
the conversion to make. And the full value scan: each problem counted over the whole file, with
the file's own row numbers."""
import h5py
import numpy as np
import pandas as pd
import pytest

from specvit.data.contract import DataContractError, read_arrays, read_labels, read_wave, validate_file
from specvit.data.values import MAX_ROWS
from specvit.data.writer import write_split

N, P = 12, 8


def clean_arrays():
    rng = np.random.default_rng(3)
    return {"wave": np.linspace(6000.0, 6070.0, P), "flux": rng.uniform(0.5, 1.0, (N, P)).astype(np.float32),
            "error": rng.uniform(0.01, 0.1, (N, P)).astype(np.float32),
            "labels/logg": rng.uniform(1, 5, N).astype(np.float32),
            "labels/Teff": rng.integers(4000, 6000, N).astype(np.float32)}  # whole kelvins: int32 holds them


def write_clean(path, jacobian=False):
    a = clean_arrays()
    jac = {"logg": a["flux"] * 0.1} if jacobian else None
    write_split(path, a["wave"], a["flux"], a["error"], {"logg": a["labels/logg"], "Teff": a["labels/Teff"]},
                {"source": "user"}, jacobian=jac)
    return path


def restore(path, name, dtype):
    """Rewrite dataset ``name`` in type ``dtype`` (attributes kept), as another tool would have stored it."""
    with h5py.File(path, "r+") as f:
        data, attrs = f[name][()], dict(f[name].attrs)
        del f[name]
        f.create_dataset(name, data=data.astype(dtype))
        f[name].attrs.update(attrs)


# dataset -> stored types the readers accept (and convert exactly, for these values)
ACCEPTED = {"flux": ["<f8", ">f4", ">f8"], "error": ["<f8", ">f4"], "labels/logg": ["<f8", ">f4", ">f8"],
            "labels/Teff": ["<i4", ">i4", "<i8", "<u2", "<f8"], "wave": ["<f4", ">f8"]}


@pytest.mark.parametrize("name, dtype", [(n, t) for n, types in ACCEPTED.items() for t in types])
def test_real_file_types_read_as_the_float32_file(tmp_path, name, dtype):
    clean = write_clean(tmp_path / "clean.h5")
    other = write_clean(tmp_path / "other.h5")
    restore(other, name, dtype)
    info = validate_file(other)
    assert info.stored_dtypes[name] == np.dtype(dtype).str
    (flux, error), (flux0, error0) = read_arrays(other, np.array([1, 4, 7])), read_arrays(clean, np.array([1, 4, 7]))
    labels, labels0 = read_labels(other), read_labels(clean)
    assert flux.dtype == error.dtype == np.float32 and flux.dtype.isnative and error.dtype.isnative
    assert np.array_equal(flux, flux0) and np.array_equal(error, error0)
    assert all(v.dtype == np.float32 and v.dtype.isnative and np.array_equal(v, labels0[k]) for k, v in labels.items())
    wave = read_wave(other)
    assert wave.dtype == np.float64 and wave.dtype.isnative
    # a float32 grid is the float64 one rounded: equal to float32 precision, not bit for bit
    np.testing.assert_allclose(wave, read_wave(clean), rtol=1e-7 if name == "wave" else 0)


def test_the_streaming_loader_and_the_file_ceilings_read_other_byte_orders(tmp_path):
    """Readers that open the file themselves: the loader's HDF5 store and the ceilings from a jacobian."""
    from specvit.data.loader import HDF5Spectra
    from specvit.evaluation.ceilings import CeilingSettings, ceiling_for_file
    from specvit.physics.nuisances import NuisanceSet

    clean, other = write_clean(tmp_path / "clean.h5", jacobian=True), write_clean(tmp_path / "other.h5", jacobian=True)
    for name in ("flux", "error", "jacobian"):
        restore(other, name, ">f8")
    rows = np.array([0, 2, 3, 9])
    for a, b in zip(HDF5Spectra(other).read(rows), HDF5Spectra(clean).read(rows)):
        assert a.dtype == b.dtype and bool((a == b).all())
    mags = np.array([20.0, 22.0])
    settings = CeilingSettings(nuisances=(NuisanceSet(continuum_degree=1, continuum_rms=0.05),))
    got, want = (ceiling_for_file(path, mags, settings) for path in (other, clean))
    assert "note" not in want and set(want["dims"]) == {"1d", "1d+cont1"}  # from the jacobian (log g only)
    pd.testing.assert_frame_equal(got, want, rtol=1e-12)


@pytest.mark.parametrize("name, dtype, kind, fix", [
    ("flux", "<c8", "complex numbers", "values.real.astype('float32')"),
    ("flux", "<i2", "integers", "normalise it first"),
    ("error", "|b1", "booleans", "np.asarray(values, dtype='float32')"),
    ("labels/logg", "|S6", "byte strings", "np.asarray(values, dtype='float32')"),
    ("wave", "<c16", "complex numbers", "values.real.astype('float32')"),
])
def test_unsupported_types_say_what_to_convert(tmp_path, name, dtype, kind, fix):
    path = write_clean(tmp_path / "t.h5")
    restore(path, name, dtype)
    reader = {"flux": read_arrays, "error": read_arrays, "wave": read_wave}.get(name, read_labels)
    with pytest.raises(DataContractError) as by_reader:
        reader(path)
    with pytest.raises(DataContractError) as err:
        validate_file(path, check_values=False)
    assert str(by_reader.value) == str(err.value)
    text = str(err.value)
    assert text.startswith(f"{path}: dataset '{name}' is {np.dtype(dtype)} ({kind}); expected "), text
    assert "either byte order" in text and f"store it as float32, e.g. with h5py in a new file: " \
        f"f.create_dataset('{name}', data=" in text and fix in text, text


# ----------------------------------------------------------------------------- the value scan


def broken(tmp_path, change):
    path = write_clean(tmp_path / "bad.h5", jacobian=True)
    with h5py.File(path, "r+") as f:
        change(f)
    with pytest.raises(DataContractError) as err:
        validate_file(path, block_rows=5)  # problems in several blocks are counted together
    return str(err.value).removeprefix(f"{path}: ")


def test_nan_and_inf_are_counted_over_every_block_with_their_rows(tmp_path):
    def change(f):
        f["flux"][3, 7] = np.nan
        f["flux"][3, 2] = np.nan
        f["flux"][11, 0] = np.inf
    assert broken(tmp_path, change) == ("dataset 'flux' has 3 non-finite values (2 NaN, 1 Inf) in rows 3, 11 "
                                        "(first at row 3, pixel 2); expected finite values")


def test_constant_spectra_are_refused_by_row(tmp_path):
    def change(f):
        f["flux"][4] = 0.0
        f["flux"][10] = 0.7
    assert broken(tmp_path, change) == ("dataset 'flux' has 2 constant rows (every pixel the same value; row 4: "
                                        "all 0) in rows 4, 10; expected spectra that vary across pixels: remove "
                                        "these rows")


def test_labels_error_and_jacobian_problems_come_together(tmp_path):
    def change(f):
        f["labels/logg"][[2, 8]] = np.nan
        f["error"][6, 1] = -0.01
        f["error"][0, 5] = 0.0
        f["jacobian"][9, 3, 0] = np.inf
    assert broken(tmp_path, change).splitlines() == [
        "3 problems:",
        "  - dataset 'error' has 2 values <= 0 in rows 0, 6 (first at row 0, pixel 5); expected strictly positive "
        "1-sigma noise",
        "  - dataset 'labels/logg' has 2 non-finite values (2 NaN, 0 Inf) in rows 2, 8; expected finite labels",
        "  - dataset 'jacobian' has 1 non-finite values (0 NaN, 1 Inf) in row 9 (first at row 9, pixel 3, label 0); "
        "expected finite values"]


def test_many_bad_rows_are_listed_up_to_a_limit_and_counted(tmp_path):
    path = tmp_path / "many.h5"
    a = clean_arrays()
    n = 3 * MAX_ROWS
    flux = np.resize(a["flux"], (n, P))
    flux[::2] = 1.0  # every other spectrum blank
    write_split(path, a["wave"], flux, np.full((n, P), 0.05, np.float32), {"logg": np.ones(n, np.float32)},
                {"source": "user"})
    with pytest.raises(DataContractError) as err:
        validate_file(path, block_rows=4)
    rows = ", ".join(str(r) for r in range(0, 2 * MAX_ROWS, 2))
    assert f"has {n // 2} constant rows (every pixel the same value; row 0: all 1) in rows {rows}, ... " \
           f"({n // 2} rows); expected" in str(err.value)


def test_values_beyond_float32_are_what_the_readers_return(tmp_path):
    """A float64 file is scanned as the readers return it: 1e40 is infinite in float32, 1e-50 is zero."""
    def change(f):
        restore_in(f, "flux")
        restore_in(f, "error")
        f["flux"][5, 5] = 1e40
        f["error"][7, 0] = 1e-50
    assert broken(tmp_path, change).splitlines()[1:] == [
        "  - dataset 'flux' has 1 non-finite values (0 NaN, 1 Inf) in row 5 (first at row 5, pixel 5); "
        "expected finite values",
        "  - dataset 'error' has 1 values <= 0 in row 7 (first at row 7, pixel 0); expected strictly positive "
        "1-sigma noise"]


def restore_in(f, name):
    data = f[name][()]
    del f[name]
    f[name] = data.astype(np.float64)
