"""Peak memory of ViT training on a ~1 GB training file: streamed from HDF5 through a small
cache versus held in RAM, each in a fresh interpreter.

    python benchmarks/loader_memory.py [--rows 32768] [--cache-mb 64] [--epochs 1] [--dir /tmp]

Writes a split of ``--rows`` spectra at 4096 pixels (flux + error float32: 32768 rows = 1 GiB)
block by block, then for each mode trains the ``tiny`` ViT preset (``specvit.training.vit_regressor``)
for ``--epochs`` epochs and reports the peak resident memory of the whole process (``peak_mb``,
imports included) and its growth from just before the data are opened (``growth_mb``), the
training throughput and the wall time. Prints a Markdown table (benchmarks/README.md, "Loader memory").
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

P = 4096

CHILD = """
import json, sys, time
import numpy as np, torch
from specvit.data.contract import read_arrays, read_labels, read_wave
from specvit.data.loader import fixed_noisy, open_training_spectra
from specvit.runtime.memory import peak_rss_mb, reset_peak_rss
from specvit.models.vit import PRESETS
from specvit.training.vit_regressor import VitRegressor

path, cache_mb, epochs, n_val = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(2)
peak_after_imports = peak_rss_mb()
before = reset_peak_rss()
t0 = time.perf_counter()
labels = read_labels(path, ["logg"])["logg"]
rows = np.arange(n_val, labels.size)                 # the first rows are the validation set
store = open_training_spectra(path, rows, cache_mb)
x_val = fixed_noisy(*read_arrays(path, slice(0, n_val)), 1.0, 1)
model = VitRegressor(vit=PRESETS["tiny"], train={"epochs": epochs, "batch_size": 256, "lr": 1e-3, "cache_mb": cache_mb})
info = model.fit(store, {"logg": labels[rows]}, x_val, {"logg": labels[:n_val]}, wave=read_wave(path),
                 log=lambda *a: None)
print(json.dumps({"store": type(store).__name__, "n_train": int(rows.size), "cache_mb": cache_mb,
                  "peak_mb": max(peak_rss_mb(), peak_after_imports), "growth_mb": peak_rss_mb() - before,
                  "samples_per_s": rows.size * epochs / info["train_seconds"],
                  "wall_s": time.perf_counter() - t0, "val_r2": info["best_val_r2"]}))
"""


def write_file(path: Path, n: int, seed: int = 0, block: int = 1024) -> None:
    """Spectra whose line depths encode log g, written block by block (the writer never holds the file)."""
    from specvit.data.writer import SplitWriter

    rng = np.random.default_rng(seed)
    wave = np.linspace(7100.0, 8850.0, P)
    centres = rng.uniform(7150.0, 8800.0, 40)
    shape = np.exp(-0.5 * ((wave[None, :] - centres[:, None]) / 1.5) ** 2)  # [lines, P]
    with SplitWriter(path, n, wave, ["logg"], {"source": "benchmark"}, overwrite=True) as w:
        for start in range(0, n, block):
            m = min(block, n - start)
            logg = rng.uniform(1, 5, m)
            depth = 0.05 + 0.05 * logg[:, None] * rng.uniform(0.5, 1.5, (1, 40))
            flux = (1 - depth @ shape).astype(np.float32)
            w.write(start, flux, np.full((m, P), 0.02, np.float32), {"logg": logg.astype(np.float32)})


def measure(path: Path, cache_mb: float, epochs: int, n_val: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(cache_mb), str(epochs), str(n_val)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=32768)
    ap.add_argument("--cache-mb", type=float, default=64.0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--n-val", type=int, default=1024)
    ap.add_argument("--dir", default=None, help="folder for the temporary file (default: the system's)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "train.h5"
        t0 = time.perf_counter()
        write_file(path, args.rows)
        print(f"wrote {path}: {args.rows} x {P}, {path.stat().st_size / 2**30:.2f} GiB in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
        data_mb = (args.rows - args.n_val) * P * 8 / 2**20
        results = [measure(path, args.cache_mb, args.epochs, args.n_val),
                   measure(path, 2 * data_mb, args.epochs, args.n_val)]
    print("| store | training spectra | cache_mb | peak RSS (MiB) | growth (MiB) | spectra/s | wall (s) | val R² |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['store']} | {r['n_train']:,} ({data_mb:,.0f} MiB) | {r['cache_mb']:,.0f} | {r['peak_mb']:,.0f} | "
              f"{r['growth_mb']:,.0f} | {r['samples_per_s']:,.0f} | {r['wall_s']:.0f} | {r['val_r2']:.3f} |")


if __name__ == "__main__":
    main()
