"""gg.save / gg.load: round trips, dtypes, atomic writes, and clear errors on foreign or broken
files (never pickle)."""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn, serialization


def _tree():
    return {
        "model": OrderedDict(w=gg.randn(3, 4), b=gg.zeros(4, dtype=gg.float64)),
        "ints": gg.tensor([1, 2, 3]),
        "mask": gg.tensor([True, False]),
        "small": gg.tensor([1, 2], dtype=gg.int32),
        "half": gg.tensor([0.5, 1.5], dtype=gg.float16),
        "scalar": gg.tensor(2.5),
        "empty": gg.zeros(0, 3),
        "array": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "meta": {
            "epoch": 7,
            "lr": 0.1,
            "name": "run-1",
            "done": False,
            "none": None,
            "betas": (0.9, 0.999),
            "sizes": [64, 128, 10],
            "inf": math.inf,
            3: "int key",
        },
    }


def test_round_trip_preserves_structure_values_and_dtypes(tmp_path):
    tree = _tree()
    path = tmp_path / "state.gg"
    gg.save(tree, path)
    back = gg.load(path)
    assert set(back) == set(tree)
    assert isinstance(back["model"], OrderedDict) and list(back["model"]) == ["w", "b"]
    for key in ("ints", "mask", "small", "half", "scalar", "empty"):
        assert isinstance(back[key], gg.Tensor)
        assert back[key].dtype == tree[key].dtype, key
        assert back[key].shape == tree[key].shape, key
        np.testing.assert_array_equal(back[key].numpy(), tree[key].numpy())
    assert back["model"]["w"].dtype == gg.float32 and back["model"]["b"].dtype == gg.float64
    np.testing.assert_array_equal(back["model"]["w"].numpy(), tree["model"]["w"].numpy())
    assert isinstance(back["array"], np.ndarray) and back["array"].dtype == np.uint8
    meta = back["meta"]
    assert meta == tree["meta"]
    assert isinstance(meta["betas"], tuple) and isinstance(meta["sizes"], list)
    assert isinstance(meta["epoch"], int) and isinstance(meta["done"], bool) and 3 in meta


def test_floats_are_exact():
    buf = io.BytesIO()
    values = [0.1, 1 / 3, 1e-308, -0.0, math.pi]
    gg.save({"values": values, "nan": math.nan}, buf)
    buf.seek(0)
    back = gg.load(buf)
    assert back["values"] == values and math.copysign(1, back["values"][3]) == -1
    assert math.isnan(back["nan"])


def test_module_state_dict_round_trip(tmp_path):
    model = nn.MLP([4, 8, 3])
    gg.save(model.state_dict(), tmp_path / "mlp.gg")
    fresh = nn.MLP([4, 8, 3])
    fresh.load_state_dict(gg.load(tmp_path / "mlp.gg"))
    x = gg.randn(2, 4)
    np.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())


def test_shared_tensors_stored_once_and_parameters_kept(tmp_path):
    shared = gg.randn(100)
    param = nn.Parameter(gg.randn(2))
    gg.save(
        {"a": shared, "b": shared, "p": param, "g": gg.ones(2, requires_grad=True)},
        tmp_path / "t.gg",
    )
    with zipfile.ZipFile(tmp_path / "t.gg") as archive:
        assert len(archive.namelist()) == 4  # manifest + 3 distinct arrays
    back = gg.load(tmp_path / "t.gg")
    assert back["a"] is back["b"]
    assert isinstance(back["p"], nn.Parameter) and back["p"].requires_grad
    assert back["g"].requires_grad and back["g"].is_leaf
    assert not back["a"].requires_grad


def test_file_is_a_documented_npz(tmp_path):
    path = tmp_path / "doc.gg"
    gg.save({"w": gg.ones(2, 2)}, path)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["__gpugrad__", "t0"]
        manifest = json.loads(npz["__gpugrad__"].tobytes().decode())
        np.testing.assert_array_equal(npz["t0"], np.ones((2, 2), np.float32))
    assert manifest["format"] == "gpugrad" and manifest["version"] == 1
    assert manifest["tree"]["type"] == "dict"
    key, node = manifest["tree"]["items"][0]
    assert (
        key == "w"
        and node["type"] == "tensor"
        and node["dtype"] == "float32"
        and node["shape"] == [2, 2]
    )


def test_map_location_cpu(tmp_path):
    gg.save({"w": gg.ones(2)}, tmp_path / "m.gg")
    assert gg.load(tmp_path / "m.gg", map_location="cpu")["w"].device == "cpu"
    assert gg.load(tmp_path / "m.gg", map_location=gg.device("cpu"))["w"].device == "cpu"


@pytest.mark.skipif(gg.cuda.is_available(), reason="checks the error without a GPU")
def test_map_location_cuda_without_gpu_is_clear(tmp_path):
    gg.save({"w": gg.ones(2)}, tmp_path / "m.gg")
    with pytest.raises(Exception, match="(?i)cupy|cuda|gpu"):
        gg.load(tmp_path / "m.gg", map_location="cuda")


def test_unsupported_objects_are_named(tmp_path):
    with pytest.raises(TypeError, match=r"can.t save object at obj\[.cfg.\]\[0\]"):
        gg.save({"cfg": [object()]}, tmp_path / "x.gg")
    with pytest.raises(TypeError, match=r"state_dict\(\)"):
        gg.save(nn.Linear(2, 2), tmp_path / "x.gg")
    with pytest.raises(TypeError, match="keys must be str or int"):
        gg.save({(1, 2): 3}, tmp_path / "x.gg")
    assert os.listdir(tmp_path) == []  # nothing written, not even a temp file


# ---- atomicity -------------------------------------------------------------------------------
def test_overwrite_is_atomic_when_the_write_fails_midway(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.gg"
    gg.save({"version": 1, "w": gg.ones(3)}, path)
    old_bytes = path.read_bytes()
    calls = []
    real_write = serialization._write_array

    def failing_write(archive, name, array):
        calls.append(name)
        if len(calls) == 3:  # after the manifest and one tensor: a crash mid-file
            raise OSError("disk full")
        real_write(archive, name, array)

    monkeypatch.setattr(serialization, "_write_array", failing_write)
    with pytest.raises(OSError, match="disk full"):
        gg.save({"version": 2, "w": gg.zeros(3), "b": gg.zeros(5), "c": gg.zeros(1)}, path)
    assert len(calls) == 3
    assert path.read_bytes() == old_bytes  # the old file is intact ...
    assert os.listdir(tmp_path) == ["ckpt.gg"]  # ... and no temp file is left behind
    assert gg.load(path)["version"] == 1


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    def failing_write(archive, name, array):
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization, "_write_array", failing_write)
    with pytest.raises(KeyboardInterrupt):
        gg.save({"w": gg.ones(3)}, tmp_path / "new.gg")
    assert os.listdir(tmp_path) == []


def test_save_fsyncs_before_replacing(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1]
    )
    gg.save({"w": gg.ones(3)}, tmp_path / "f.gg")
    assert events[:2] == ["fsync", "replace"]


# ---- foreign and broken files ----------------------------------------------------------------
def _assert_bad(path, match="not a valid gpugrad file"):
    with pytest.raises(ValueError, match=match) as info:
        gg.load(path)
    assert str(path) in str(info.value)  # the message names the file


def test_truncated_file(tmp_path):
    path = tmp_path / "full.gg"
    gg.save({"w": gg.randn(64, 64), "b": gg.randn(64)}, path)
    data = path.read_bytes()
    for cut in (len(data) - 10, len(data) // 2, 100, 3, 0):
        truncated = tmp_path / f"cut{cut}.gg"
        truncated.write_bytes(data[:cut])
        _assert_bad(truncated)


def test_corrupted_tensor_bytes_are_detected(tmp_path):
    path = tmp_path / "c.gg"
    gg.save({"w": gg.zeros(1000)}, path)
    data = bytearray(path.read_bytes())
    start = data.index(b"t0.npy")
    data[start + 2000] ^= 0xFF  # inside t0's data
    path.write_bytes(bytes(data))
    _assert_bad(path, match="corrupt")


def test_random_bytes(tmp_path):
    path = tmp_path / "random.bin"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _assert_bad(path)


def test_plain_npz_without_manifest(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.ones(3))
    _assert_bad(path, match="manifest")


def test_single_npy_file(tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, np.ones(3))
    _assert_bad(path)


def test_pickle_file_never_unpickled(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Boom()))
    _assert_bad(path)


def test_npz_with_object_array_is_refused(tmp_path):
    path = tmp_path / "objects.gg"
    gg.save({"w": gg.ones(2)}, path)
    # smuggle a pickled entry into the archive
    with zipfile.ZipFile(path, "a") as archive, archive.open("t1.npy", "w") as entry:
        np.lib.format.write_array(entry, np.array([object()], dtype=object), allow_pickle=True)
    _assert_bad(path, match="pickle")


def test_torch_file(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    _assert_bad(path, match="torch")


def test_manifest_from_the_future_or_wrong_format(tmp_path):
    for manifest, match in [
        ({"format": "gpugrad", "version": 99, "tree": {"type": "none"}}, "newer"),
        ({"format": "other", "version": 1, "tree": {"type": "none"}}, "does not describe"),
    ]:
        path = tmp_path / "m.gg"
        serialization._write_archive(str(path), manifest, [])
        _assert_bad(path, match=match)


def test_manifest_and_entry_disagree(tmp_path):
    path = tmp_path / "lie.gg"
    manifest = {
        "format": "gpugrad",
        "version": 1,
        "tree": {"type": "tensor", "entry": "t0", "dtype": "float32", "shape": [3]},
    }
    serialization._write_archive(str(path), manifest, [("t0", np.zeros(4, np.float64))])
    _assert_bad(path, match="manifest says")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.gg"):
        gg.load("nope.gg")
