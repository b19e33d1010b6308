"""The training loader: in-RAM and streamed (HDF5) stores give the same batches when the cache
holds everything; a small cache streams whole blocks, still covers every row once per epoch and
keeps peak memory bounded as N grows."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import torch

from specvit.data.contract import read_arrays
from specvit.data.loader import BLOCK_ROWS, HDF5Spectra, InMemorySpectra, NoisyBatches, open_training_spectra, rows_in
from specvit.data.writer import write_split

P = 64


def make_file(path, n, p=P, seed=0):
    """A split whose flux row i is constant i (so a batch row says which file row it came from)."""
    rng = np.random.default_rng(seed)
    flux = np.repeat(np.arange(n, dtype=np.float32)[:, None], p, axis=1)
    error = rng.uniform(0.01, 0.1, (n, p)).astype(np.float32)
    write_split(path, np.linspace(7000.0, 9000.0, p), flux, error,
                {"logg": rng.uniform(1, 5, n).astype(np.float32)}, {"source": "test"})
    return path


def all_batches(batches, epoch):
    return [(x.clone(), y.clone()) for x, y in batches.epoch(epoch)]


def test_file_store_with_room_for_everything_gives_the_in_ram_batches(tmp_path):
    path = make_file(tmp_path / "train.h5", 700)
    rows = np.sort(np.random.default_rng(1).choice(700, 500, replace=False))
    flux, error = read_arrays(path, rows)
    targets = np.random.default_rng(2).normal(size=(500, 2))
    in_ram = NoisyBatches(flux, error, targets, 64, 1.0, seed=3)
    streamed = NoisyBatches.from_store(HDF5Spectra(path, rows, cache_mb=100), targets, 64, 1.0, seed=3)
    for epoch in (0, 1, 5):
        a, b = all_batches(in_ram, epoch), all_batches(streamed, epoch)
        assert len(a) == len(b) == len(in_ram) == 8
        for (xa, ya), (xb, yb) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_small_cache_streams_whole_blocks_and_covers_every_row_once(tmp_path):
    n, batch = 5 * BLOCK_ROWS + 37, 100
    path = make_file(tmp_path / "train.h5", n)
    store = HDF5Spectra(path, None, cache_mb=2 * BLOCK_ROWS * 2 * 4 * P / 2**20)  # two blocks per window
    assert store.window_rows == 2 * BLOCK_ROWS
    targets = np.arange(n, dtype=np.float64)[:, None]
    batches = NoisyBatches.from_store(store, targets, batch, 0.0, seed=4)  # no noise: flux = row id
    got = all_batches(batches, 0)
    assert len(got) == len(batches) == -(-n // batch)
    assert [len(y) for _, y in got[:-1]] == [batch] * (len(got) - 1)
    ids = torch.cat([y[:, 0] for _, y in got]).long().numpy()
    assert sorted(ids) == list(range(n))                      # every row exactly once
    flux_ids = torch.cat([x for x, _ in got])
    assert torch.equal(flux_ids, torch.from_numpy(ids).float()[:, None].expand(-1, P))  # the right rows
    # the first window is two whole blocks: its 2 * BLOCK_ROWS rows come from exactly two blocks
    first_window = ids[: 2 * BLOCK_ROWS]
    assert len(set(first_window // BLOCK_ROWS)) == 2
    # seeded: the same epoch again is identical, another epoch is shuffled differently
    assert np.array_equal(ids, torch.cat([y[:, 0] for _, y in all_batches(batches, 0)]).long().numpy())
    assert not np.array_equal(ids, torch.cat([y[:, 0] for _, y in all_batches(batches, 1)]).long().numpy())


def test_open_training_spectra_uses_ram_only_when_the_subset_fits(tmp_path):
    path = make_file(tmp_path / "train.h5", 300)
    rows = np.arange(0, 300, 2)
    one_row_mb = 2 * 4 * P / 2**20
    fits = open_training_spectra(path, rows, cache_mb=150 * one_row_mb)
    assert isinstance(fits, InMemorySpectra) and fits.n == 150
    assert np.array_equal(fits.flux.numpy(), read_arrays(path, rows)[0])
    streams = open_training_spectra(path, rows, cache_mb=149 * one_row_mb)
    assert isinstance(streams, HDF5Spectra) and streams.n == 150
    assert rows_in(149 * one_row_mb, P) == 149


def test_training_from_the_file_store_equals_training_in_ram(tmp_path):
    """The trainer's results do not depend on where the spectra live when the cache holds them."""
    from specvit.models.vit import ViTConfig, build_vit
    from specvit.training.trainer import TrainConfig, TrainingData, train

    rng = np.random.default_rng(0)
    n, n_val = 300, 40  # n > BLOCK_ROWS: the smallest cache streams two windows
    logg = rng.uniform(1, 5, n + n_val).astype(np.float32)
    flux = (1 - 0.1 * logg[:, None] * np.exp(-0.5 * ((np.arange(P) - 32) / 4.0) ** 2)).astype(np.float32)
    error = np.full_like(flux, 0.02)
    path = tmp_path / "train.h5"
    write_split(path, np.linspace(7000.0, 9000.0, P), flux[:n], error[:n], {"logg": logg[:n]}, {"source": "test"})
    x_val = flux[n:] + 0.02 * rng.normal(size=(n_val, P)).astype(np.float32)
    cfg = TrainConfig(epochs=2, batch_size=32, lr=3e-3, seed=1)
    vit = {"n_pixels": P, "tokenizer": "C1D", "patch": 16, "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32,
           "pos_encoding": "learned", "pooling": "mean"}

    def fit(source, err, folder):
        torch.manual_seed(0)
        model = build_vit(ViTConfig.from_dict(vit))
        data = TrainingData(("logg",), source, err, {"logg": logg[:n]}, x_val, {"logg": logg[n:]})
        info = train(model, cfg, data, tmp_path / folder, log=lambda *a: None)
        return model.state_dict(), info

    ram, info_ram = fit(flux[:n], error[:n], "ram")
    streamed, info_file = fit(HDF5Spectra(path, None, cache_mb=100), None, "file")
    assert info_ram["best_val_r2"] == info_file["best_val_r2"]
    assert all(torch.equal(ram[k], streamed[k]) for k in ram)
    small, info_small = fit(HDF5Spectra(path, None, cache_mb=1e-3), None, "small")  # one block per window
    assert np.isfinite(info_small["best_val_r2"]) and info_small["epochs"] == 2


MEMORY_PROBE = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from specvit.data.loader import NoisyBatches, open_training_spectra
    from specvit.runtime.memory import reset_peak_rss, peak_rss_mb
    path, cache_mb = sys.argv[1], float(sys.argv[2])
    torch.set_num_threads(1)
    before = reset_peak_rss()
    store = open_training_spectra(path, None, cache_mb)
    batches = NoisyBatches.from_store(store, np.zeros((store.n, 1)), 256, 1.0, seed=0)
    rows = sum(len(y) for _, y in batches.epoch(0))
    print(json.dumps({"rows": rows, "growth_mb": peak_rss_mb() - before, "store": type(store).__name__}))
""")


def peak_growth(path, cache_mb):
    """Growth of peak RSS (MiB) over one epoch of batches, in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path), str(cache_mb)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_streaming_keeps_peak_memory_bounded_as_n_grows(tmp_path):
    """16 MiB and 128 MiB of spectra through an 8 MiB cache: the peak grows by the same few tens
    of MiB (cache, read buffers, batches, torch's first operations), not with the data; the in-RAM
    path (cache larger than the data) grows by the data. benchmarks/loader_memory.py does the
    same for a 1 GB file."""
    p = 1024
    sizes = {}
    for n in (2048, 16384):  # flux + error: 16 MiB and 128 MiB
        rng = np.random.default_rng(n)
        path = tmp_path / f"n{n}.h5"
        flux = rng.uniform(0.5, 1.0, (n, p)).astype(np.float32)
        write_split(path, np.linspace(7000.0, 9000.0, p), flux, np.full_like(flux, 0.05),
                    {"logg": rng.uniform(1, 5, n).astype(np.float32)}, {"source": "test"})
        del flux
        sizes[n] = path
    small, large = (peak_growth(sizes[n], cache_mb=8) for n in (2048, 16384))
    assert small["store"] == large["store"] == "HDF5Spectra" and large["rows"] == 16384
    data_mb = 16384 * p * 8 / 2**20
    assert large["growth_mb"] < 0.5 * data_mb, large
    assert large["growth_mb"] < small["growth_mb"] + 16, (small, large)
    in_ram = peak_growth(sizes[16384], cache_mb=1024)
    assert in_ram["store"] == "InMemorySpectra" and in_ram["growth_mb"] > 0.9 * data_mb, in_ram


def noisy_by_row(batches, epoch, flux):
    """{file row: the noisy spectrum one epoch gave it}; flux row i is constant i, and the noise is
    small beside 1, so a batch row's nearest integer mean says which row it is."""
    out = {}
    for x, _ in batches.epoch(epoch):
        for spectrum in x:
            out[int(round(float(spectrum.mean())))] = spectrum.clone()
    assert sorted(out) == sorted(set(flux[:, 0].astype(int)))
    return out


def test_a_fixed_draw_gives_every_row_the_same_noise_every_epoch_in_any_store(tmp_path):
    path = make_file(tmp_path / "train.h5", 600)
    rows = np.arange(0, 600, 2)
    flux, error = read_arrays(path, rows)
    targets = np.zeros((rows.size, 1))
    fixed = NoisyBatches(flux, error, targets, 64, 1.0, seed=3, fresh_noise=False)
    first, second = noisy_by_row(fixed, 0, flux), noisy_by_row(fixed, 7, flux)
    assert all(torch.equal(first[r], second[r]) for r in first)                # the same inputs every epoch
    order = [[int(round(float(s.mean()))) for s in x] for x, _ in fixed.epoch(0)]
    assert order != [[int(round(float(s.mean()))) for s in x] for x, _ in fixed.epoch(1)]  # in a new order
    fresh = NoisyBatches(flux, error, targets, 64, 1.0, seed=3)
    assert order == [[int(round(float(s.mean()))) for s in x] for x, _ in fresh.epoch(0)]   # the same order
    assert not torch.equal(noisy_by_row(fresh, 0, flux)[0], noisy_by_row(fresh, 1, flux)[0])
    # each row's draw is its own seeded one: reproducible, streamed or in RAM, and 1-sigma as `error` says
    streamed = NoisyBatches.from_store(HDF5Spectra(path, rows, cache_mb=0.5), targets, 64, 1.0, seed=3,
                                       fresh_noise=False)
    again = noisy_by_row(streamed, 2, flux)
    assert all(torch.equal(first[r], again[r]) for r in first)
    eps = torch.stack([(first[int(r)] - float(r)) / torch.from_numpy(e) for r, e in zip(flux[:, 0], error)])
    assert abs(float(eps.mean())) < 0.02 and abs(float(eps.std()) - 1.0) < 0.02
    other_seed = noisy_by_row(NoisyBatches(flux, error, targets, 64, 1.0, seed=4, fresh_noise=False), 0, flux)
    assert not torch.equal(first[0], other_seed[0])


# ----------------------------------------------------------------------------- the device's batches


def test_device_batches_on_the_cpu_are_the_in_ram_batches_from_any_store(tmp_path):
    """Fresh noise: on the CPU device the device path draws order and noise from the same seeded
    generator in the same order as the host loader, so the batches are identical; the subset may
    come from RAM or be read from the file (a cache smaller than the subset)."""
    from specvit.data.device_loader import DeviceBatches

    path = make_file(tmp_path / "train.h5", 700)
    rows = np.sort(np.random.default_rng(1).choice(700, 500, replace=False))
    flux, error = read_arrays(path, rows)
    targets = np.random.default_rng(2).normal(size=(500, 2))
    host = NoisyBatches(flux, error, targets, 64, 1.0, seed=3)
    for store in (InMemorySpectra(flux, error), HDF5Spectra(path, rows, cache_mb=0.05)):
        resident = DeviceBatches(store, targets, 64, 1.0, 3, fresh_noise=True, device=torch.device("cpu"))
        assert len(resident) == len(host) == 8
        for epoch in (0, 4):
            for (xa, ya), (xb, yb) in zip(all_batches(host, epoch), all_batches(resident, epoch), strict=True):
                assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert torch.equal(torch.from_numpy(flux), torch.from_numpy(read_arrays(path, rows)[0]))  # the store untouched


def test_device_batches_with_a_fixed_draw_keep_each_rows_noise_whatever_the_subset(monkeypatch):
    """fresh_noise False on the device: each row gets one draw for the run, a function of (seed, row)
    only (here: the same whether the set has 1,500 or 2,100 rows, i.e. across the device's blocks
    and upload slices), 1-sigma as ``error`` says, and only the batch order changes per epoch."""
    import specvit.data.device_loader as device_loader

    n, p = 2100, 16
    rng = np.random.default_rng(0)
    flux = np.repeat(np.arange(n, dtype=np.float32)[:, None], p, axis=1)
    error = rng.uniform(0.01, 0.1, (n, p)).astype(np.float32)
    targets = np.arange(n, dtype=np.float64)[:, None]

    def noisy(m, epoch, seed=3):
        batches = device_loader.DeviceBatches(InMemorySpectra(flux[:m], error[:m]), targets[:m], 256, 1.0, seed,
                                              fresh_noise=False, device=torch.device("cpu"))
        got = all_batches(batches, epoch)
        ids = torch.cat([y[:, 0] for _, y in got]).long()
        out = torch.empty(m, p)
        out[ids] = torch.cat([x for x, _ in got])
        return out, ids

    monkeypatch.setattr(device_loader, "UPLOAD_ROWS", 1024)  # more than one upload slice
    first, order0 = noisy(n, 0)
    again, order1 = noisy(n, 5)
    part, _ = noisy(1500, 0)
    assert torch.equal(first, again) and not torch.equal(order0, order1)
    assert sorted(order0.tolist()) == list(range(n))
    assert torch.equal(first[:1500], part)
    eps = (first - torch.from_numpy(flux)) / torch.from_numpy(error)
    assert abs(float(eps.mean())) < 0.02 and abs(float(eps.std()) - 1.0) < 0.02
    assert not torch.equal(eps[0], eps[1]) and not torch.equal(eps[0], eps[1024])  # rows and blocks differ
    assert not torch.equal(first, noisy(n, 0, seed=4)[0])


def test_prefetched_batches_are_the_batches_errors_included_and_an_early_stop_ends_the_thread():
    import threading

    from specvit.data.device_loader import prefetched

    items = [(torch.full((2, 3), float(i)), torch.tensor([i])) for i in range(7)]
    got = list(prefetched(iter(items), torch.device("cpu")))
    assert len(got) == 7 and all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got, items))

    def failing():
        yield items[0]
        raise OSError("the file went away")

    stream = prefetched(failing(), torch.device("cpu"))
    assert torch.equal(next(stream)[0], items[0][0])
    try:
        next(stream)
        raise AssertionError("the producer's error was swallowed")
    except OSError as e:
        assert "the file went away" in str(e)

    closed = []

    def endless():
        try:
            while True:
                yield items[0]
        finally:
            closed.append(True)

    stream = prefetched(endless(), torch.device("cpu"), depth=2)
    next(stream)
    stream.close()  # the consumer stops early (an error in the training step)
    assert closed == [True]
    assert not any(t.name == "specvit-prefetch" for t in threading.enumerate())
