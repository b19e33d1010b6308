"""The one atomic write, the one file / JSON hash and the one JSON conversion of specvit
(specvit.runtime.io, specvit.runtime.hashing), against independent computations."""
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from specvit.runtime import hashing
from specvit.runtime.hashing import file_hash, json_digest
from specvit.runtime.io import atomic_path, jsonable, remove_leftovers, write_json


def test_atomic_path_renames_only_a_finished_file(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name == f".out.txt.tmp-{os.getpid()}"
        tmp.write_text("first")
        assert not target.exists()  # nothing under the final name until the block succeeds
    assert target.read_text() == "first"

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        with atomic_path(target, fsync=True) as tmp:
            tmp.write_text("half")
            raise Crash
    assert target.read_text() == "first"  # the old file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]  # no temporary left


def test_leftovers_of_killed_writers_are_found_by_their_name(tmp_path):
    (tmp_path / ".a.h5.tmp-123").write_text("x")
    (tmp_path / "a.h5").write_text("kept")
    assert remove_leftovers(tmp_path / "a.h5") == [tmp_path / ".a.h5.tmp-123"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]


def test_file_hash_full_partial_and_folders(tmp_path, monkeypatch):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abcdXXXXXXXXwxyz")
    assert file_hash(f) == {"sha256": hashlib.sha256(b"abcdXXXXXXXXwxyz").hexdigest(), "bytes": 16}
    assert file_hash(f, partial_above=16) == file_hash(f)  # not above the limit: the whole file
    monkeypatch.setattr(hashing, "BLOCK", 4)
    assert file_hash(f) == {"sha256": hashlib.sha256(b"abcdXXXXXXXXwxyz").hexdigest(), "bytes": 16}
    assert file_hash(f, partial_above=15) == {"sha256": hashlib.sha256(b"abcdwxyz").hexdigest(), "bytes": 16,
                                              "partial": True}
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("b")
    (tmp_path / "d" / "a.txt").write_text("a")
    expected = hashlib.sha256()
    for name, text in (("a.txt", b"a"), ("b.txt", b"b")):
        expected.update(name.encode())
        expected.update(hashlib.sha256(text).hexdigest().encode())
    assert file_hash(tmp_path / "d") == {"sha256": expected.hexdigest(), "bytes": 2}


def test_json_digest_ignores_key_order_and_is_the_checkpoint_fingerprint_of_earlier_versions():
    parts = ({"lr": 3e-4, "label_weights": {}, "seed": 0}, {"vit": {"patch": 64}, "n_train": 200}, ["logg"], 200)
    # the trainer's fingerprint before it moved here: checkpoints written then still resume
    before = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert json_digest(parts) == before
    assert json_digest({"a": 1, "b": [1, 2]}) == json_digest({"b": [1, 2], "a": 1})
    assert json_digest({"a": 1}) != json_digest({"a": 2})
    assert json_digest({"p": Path("x")}) == json_digest({"p": "x"})  # no JSON type: its str


def test_jsonable_gives_plain_json_and_null_for_non_finite():
    value = {1: np.float32(0.5), "a": (np.int64(3), {2, 1}), "p": Path("x/y"), "n": np.array([1.0, np.nan]),
             "inf": -math.inf, "b": b"bytes", "none": None, "flag": np.bool_(True)}
    assert jsonable(value) == {"1": 0.5, "a": [3, [1, 2]], "p": "x/y", "n": [1.0, None], "inf": None,
                               "b": "bytes", "none": None, "flag": True}
    json.dumps(jsonable(value), allow_nan=False)  # strict JSON


def test_write_json_is_indented_strict_json(tmp_path):
    write_json({"x": float("nan"), "y": [1, 2]}, tmp_path / "o.json")
    text = (tmp_path / "o.json").read_text()
    assert text == '{\n  "x": null,\n  "y": [\n    1,\n    2\n  ]\n}\n'
