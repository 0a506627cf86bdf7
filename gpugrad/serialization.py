"""gg.save / gg.load: state dicts (nested dicts, lists and tuples of tensors, arrays, numbers,
strings, bools and None) in one file, written atomically, read without pickle.

File format (version 1): an uncompressed zip archive in NumPy's .npz layout, so
`numpy.load(path, allow_pickle=False)` can open it too. Entries:

* ``__gpugrad__.npy``: the manifest, a 1-D uint8 array holding UTF-8 JSON
  ``{"format": "gpugrad", "version": 1, "tree": NODE}``. It is written first.
* ``t0.npy``, ``t1.npy``, ...: one .npy array per distinct tensor or array (a tensor that
  appears twice in the tree, e.g. tied weights, is stored once and loads as one object).

A NODE is a JSON object with a "type":

* ``{"type": "tensor", "entry": "t0", "dtype": "float32", "shape": [3, 4], "device": "cpu",
  "requires_grad": false, "parameter": false}``: a gg Tensor (or gg.nn.Parameter);
* ``{"type": "ndarray", "entry": "t1", "dtype": ..., "shape": ...}``: a NumPy array;
* ``{"type": "dict" | "ordereddict", "items": [[KEY, NODE], ...]}``, KEY a JSON string or int;
* ``{"type": "list" | "tuple", "items": [NODE, ...]}``;
* ``{"type": "int" | "str" | "bool", "value": ...}``, ``{"type": "float", "value": "0x1.8p+1"}``
  (float.hex, exact, covers inf and nan) and ``{"type": "none"}``.

Containers nest at most MAX_DEPTH deep, and a structure that contains itself is refused.

Saving writes a temporary file ``.NAME.PID.XXXXXXXX.tmp`` in the target's directory, flushes
and fsyncs it, then os.replace()s it over the target: a crash leaves either the old file or the
new one, never a mix. An exception or a SIGTERM / SIGHUP (whose action is the default one:
terminate) removes the temporary before the process goes on or ends; a SIGKILL can't be
caught, so each save first removes the temporaries that dead processes left for its target.
Loading opens the archive with allow_pickle=False (loading
never runs code), checks the manifest, every entry's dtype and shape, and builds the result
only after every array was read, so a bad file raises ValueError naming the path and
returns nothing half-loaded.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import signal
import tempfile
import threading
import zipfile
from collections import OrderedDict

import numpy as np

from gpugrad import backend, dtypes
from gpugrad.tensor import Tensor

__all__ = ["FORMAT", "VERSION", "load", "save"]

FORMAT = "gpugrad"
VERSION = 1
MANIFEST = "__gpugrad__"
MAX_DEPTH = 100  # nested containers; state dicts use 2 to 4


# ---- saving --------------------------------------------------------------------------------
class _Writer:
    """Turns an object tree into a JSON-able manifest tree plus a list of arrays."""

    def __init__(self):
        self.arrays: list[tuple[str, np.ndarray]] = []
        self.entry_of: dict[int, str] = {}
        self._keep_alive: list = []  # ids are only unique while the objects live
        self._open: dict[int, str] = {}  # containers being written (id -> where): a cycle test

    def _entry(self, obj, array) -> str:
        if id(obj) not in self.entry_of:
            name = f"t{len(self.arrays)}"
            host = backend.to_host(array)
            host = host if host.flags.c_contiguous else host.copy(order="C")  # keeps 0-d as 0-d
            self.arrays.append((name, host))
            self.entry_of[id(obj)] = name
            self._keep_alive.append(obj)
        return self.entry_of[id(obj)]

    def node(self, obj, where: str) -> dict:
        if isinstance(obj, Tensor):
            if obj.array.dtype.kind not in "biuf":
                raise TypeError(
                    f"gg.save: tensor at {where} has unsupported dtype {obj.array.dtype}"
                )
            from gpugrad.nn.modules import Parameter

            return {
                "type": "tensor",
                "entry": self._entry(obj, obj.array),
                "dtype": obj.array.dtype.name,
                "shape": list(obj.shape),
                "device": str(obj.device),
                "requires_grad": bool(obj.requires_grad),
                "parameter": isinstance(obj, Parameter),
            }
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biuf":
                raise TypeError(
                    f"gg.save: array at {where} has dtype {obj.dtype}; "
                    "only bool, int and float arrays are saved"
                )
            return {
                "type": "ndarray",
                "entry": self._entry(obj, obj),
                "dtype": obj.dtype.name,
                "shape": list(obj.shape),
            }
        if obj is None:
            return {"type": "none"}
        if isinstance(obj, (bool, np.bool_)):
            return {"type": "bool", "value": bool(obj)}
        if isinstance(obj, (int, np.integer)):
            return {"type": "int", "value": int(obj)}
        if isinstance(obj, (float, np.floating)):
            return {"type": "float", "value": float(obj).hex()}
        if isinstance(obj, str):
            return {"type": "str", "value": obj}
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in self._open:
                raise ValueError(
                    f"gg.save: {where} refers back to {self._open[id(obj)]}, which contains "
                    "it: a structure that contains itself can't be saved"
                )
            if len(self._open) >= MAX_DEPTH:
                raise ValueError(
                    f"gg.save: {where[:80]}... is nested more than {MAX_DEPTH} containers deep"
                )
            self._open[id(obj)] = where
            try:
                return self._container(obj, where)
            finally:
                del self._open[id(obj)]
        hint = ""
        if hasattr(obj, "state_dict"):
            hint = " (save its .state_dict() instead)"
        raise TypeError(
            f"gg.save: can't save {type(obj).__name__} at {where}{hint}; supported: tensors, NumPy "
            "arrays, dict/list/tuple, int, float, str, bool, None"
        )

    def _container(self, obj, where: str) -> dict:
        if isinstance(obj, dict):
            items = []
            for key, value in obj.items():
                if isinstance(key, bool) or not isinstance(key, (str, int, np.integer)):
                    raise TypeError(
                        f"gg.save: dict key {key!r} at {where} is a "
                        f"{type(key).__name__}; keys must be str or int"
                    )
                key = key if isinstance(key, str) else int(key)
                items.append([key, self.node(value, f"{where}[{key!r}]")])
            return {
                "type": "ordereddict" if isinstance(obj, OrderedDict) else "dict",
                "items": items,
            }
        return {
            "type": "tuple" if isinstance(obj, tuple) else "list",
            "items": [self.node(value, f"{where}[{i}]") for i, value in enumerate(obj)],
        }


def _write_array(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    """One .npy entry (a separate function so tests can make a write fail midway)."""
    with archive.open(name + ".npy", "w", force_zip64=True) as entry:
        np.lib.format.write_array(entry, array, allow_pickle=False)


def _write_archive(fileobj, manifest: dict, arrays) -> None:
    text = json.dumps(manifest, allow_nan=False, separators=(",", ":"))
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        _write_array(archive, MANIFEST, np.frombuffer(text.encode("utf-8"), dtype=np.uint8))
        for name, array in arrays:
            _write_array(archive, name, array)


def save(obj, f) -> None:
    """Write obj (a state dict or a nested structure of tensors and plain values) to the path
    f, atomically; f may also be a writable binary file object (written in place)."""
    writer = _Writer()
    manifest = {"format": FORMAT, "version": VERSION, "tree": writer.node(obj, "obj")}
    if hasattr(f, "write"):
        _write_archive(f, manifest, writer.arrays)
        return
    path = os.fspath(f)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"gg.save: {path!r} is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    _remove_stale_temporaries(directory, prefix)
    with _unwind_on_termination():
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f"{prefix}{os.getpid()}.", suffix=".tmp", dir=directory
            )
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT,
                f"gg.save: can't write {path!r}: the folder {directory!r} does not exist",
            ) from None
        except OSError as exc:
            raise type(exc)(exc.errno, f"gg.save: can't write {path!r}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                _write_archive(out, manifest, writer.arrays)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
    _fsync_directory(directory)


_TEMPORARY = re.compile(r"(\d+)\.[a-z0-9_]{8}\.tmp")  # PID.XXXXXXXX.tmp, after the prefix


def _remove_stale_temporaries(directory: str, prefix: str) -> None:
    """Delete what earlier saves to this target left when they were killed (SIGKILL, power
    loss): temporaries whose writing process no longer runs. A live writer's is left alone."""
    if os.name != "posix":  # os.kill(pid, 0) probes a process only on POSIX
        return
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        match = _TEMPORARY.fullmatch(name[len(prefix) :])
        if match and not _running(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


class _Terminated(BaseException):
    """Raised by a termination signal inside gg.save, so that the temporary is removed."""


@contextlib.contextmanager
def _unwind_on_termination():
    """While gg.save writes, a SIGTERM / SIGHUP whose action is the default one (terminate at
    once) unwinds the save instead; then the default action runs, so the process still ends
    by that signal. Handlers the program installed itself, and threads other than the main
    one (where signals can't be handled), are left as they are."""
    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {}

    def terminate(signum, frame):
        raise _Terminated(signum)

    try:
        if threading.current_thread() is threading.main_thread():
            for signum in wanted:
                if signal.getsignal(signum) == signal.SIG_DFL:
                    previous[signum] = signal.signal(signum, terminate)
        yield
    except _Terminated as stop:
        for signum in previous:
            signal.signal(signum, signal.SIG_DFL)
        previous.clear()
        signal.raise_signal(stop.args[0])
        raise  # only if the signal was blocked
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- loading -------------------------------------------------------------------------------
class _Reader:
    def __init__(self, where: str, arrays: dict, device):
        self.where, self.arrays, self.device = where, arrays, device
        self.made: dict[str, object] = {}

    def fail(self, message: str):
        return ValueError(f"gg.load: {self.where} is not a valid gpugrad file: {message}")

    def array(self, node: dict) -> np.ndarray:
        name = node.get("entry")
        if name not in self.arrays:
            raise self.fail(
                f"the manifest names an array entry {name!r} that the archive does not hold"
            )
        array = self.arrays[name]
        if array.dtype.name != node.get("dtype") or list(array.shape) != node.get("shape"):
            raise self.fail(
                f"entry {name!r} holds {array.dtype.name} {list(array.shape)}, the manifest says "
                f"{node.get('dtype')} {node.get('shape')}"
            )
        supported = (
            array.dtype in dtypes._BY_NP if node["type"] == "tensor" else array.dtype.kind in "biuf"
        )
        if not supported:
            raise self.fail(
                f"entry {name!r} has dtype {array.dtype.name}, which gg.save never writes"
            )
        return array

    def build(self, node, depth: int = 0):
        if not isinstance(node, dict) or "type" not in node:
            raise self.fail(f"malformed manifest node {str(node)[:80]!r}")
        kind = node["type"]
        if kind in ("dict", "ordereddict", "list", "tuple") and depth >= MAX_DEPTH:
            raise self.fail(f"containers are nested more than {MAX_DEPTH} deep")
        if kind in ("tensor", "ndarray"):
            return self.tensor(node) if kind == "tensor" else self.array(node)
        if kind == "none":
            return None
        if kind in ("bool", "int", "str"):
            value = node.get("value")
            expected = {"bool": bool, "int": int, "str": str}[kind]
            if not isinstance(value, expected) or (kind == "int" and isinstance(value, bool)):
                raise self.fail(f"a {kind} node holds {value!r}")
            return value
        if kind == "float":
            try:
                return float.fromhex(node["value"])
            except (KeyError, TypeError, ValueError):
                raise self.fail(f"bad float node {node!r}") from None
        if kind in ("dict", "ordereddict"):
            out = OrderedDict() if kind == "ordereddict" else {}
            for item in self.items(node):
                if (
                    not isinstance(item, list)
                    or len(item) != 2
                    or not isinstance(item[0], (str, int))
                ):
                    raise self.fail(f"bad dict item {str(item)[:80]!r}")
                out[item[0]] = self.build(item[1], depth + 1)
            return out
        if kind in ("list", "tuple"):
            values = [self.build(item, depth + 1) for item in self.items(node)]
            return tuple(values) if kind == "tuple" else values
        raise self.fail(f"unknown node type {kind!r}")

    def items(self, node):
        items = node.get("items")
        if not isinstance(items, list):
            raise self.fail(f"a {node['type']} node has no item list")
        return items

    def tensor(self, node: dict) -> Tensor:
        name = node.get("entry")
        if name in self.made:  # the same tensor saved twice (tied weights): one object again
            return self.made[name]
        array = self.array(node)
        try:
            device = (
                self.device
                if self.device is not None
                else backend.as_device(node.get("device", "cpu"))
            )
        except (TypeError, ValueError):
            raise self.fail(f"bad device {node.get('device')!r}") from None
        if device.type == "cuda" and not backend.cuda_available():
            raise RuntimeError(
                f"gg.load: {self.where} holds tensors saved on {node.get('device')}, but no GPU is "
                f"usable ({backend.cuda_unavailable_reason()}); pass map_location='cpu'"
            )
        array = backend.to_device(array, device)
        if node.get("parameter"):
            from gpugrad.nn.modules import Parameter

            tensor = Parameter(
                Tensor._make(array), requires_grad=bool(node.get("requires_grad", True))
            )
        else:
            tensor = Tensor._make(
                array, bool(node.get("requires_grad")) and array.dtype.kind == "f"
            )
        self.made[name] = tensor
        return tensor


def _read_archive(f, where: str) -> tuple[dict, dict]:
    """(manifest, {entry name: array}) with every array read, or ValueError naming the file."""

    def bad(message: str) -> ValueError:
        return ValueError(f"gg.load: {where} is not a valid gpugrad file: {message}")

    head = _first_bytes(f, 6)
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a zip entry, or an empty zip
        if head.startswith(b"\x93NUMPY"):
            raise bad("it is a single .npy array, not a gpugrad archive")
        if head[:1] == b"\x80":  # pickle's protocol opcode (torch.save's legacy format)
            raise bad(
                "it looks like a pickle; gpugrad never loads pickles (its files come from gg.save)"
            )
        raise bad("not a zip archive (gpugrad files are zip archives written by gg.save)")
    try:
        npz = np.load(f, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise bad(f"the archive is truncated or corrupt ({exc})") from None
    except ValueError as exc:  # NumPy: neither .npy nor zip (it would need pickle)
        raise bad(f"not a zip/npz archive ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise bad("it is a single .npy array, not a gpugrad archive")
    with npz:
        if MANIFEST not in npz.files:
            names = set(npz.files)
            what = (
                "a torch.save file"
                if any(n.endswith("data.pkl") for n in names)
                else "a plain .npz"
            )
            raise bad(
                f"no {MANIFEST} manifest entry (looks like {what}; gpugrad files come from gg.save)"
            )
        arrays = {}
        try:
            raw = npz[MANIFEST]
            for name in npz.files:
                if name != MANIFEST:
                    arrays[name] = npz[name]
        except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
            raise bad(f"an entry is truncated or corrupt ({exc})") from None
        except ValueError as exc:
            raise bad(f"an entry can't be read without pickle ({exc})") from None
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise bad("the manifest entry is not UTF-8 JSON bytes")
    try:
        manifest = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"the manifest is not valid JSON ({exc})") from None
    except RecursionError:
        raise bad(
            f"the manifest is nested too deeply (gg.save writes at most {MAX_DEPTH})"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "tree" not in manifest:
        raise bad("the manifest does not describe a gpugrad file")
    version = manifest.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise bad(
            f"format version {version!r} is newer than this "
            f"gpugrad reads ({VERSION}); upgrade gpugrad"
        )
    return manifest, arrays


def _first_bytes(f, n: int) -> bytes:
    if isinstance(f, (str, bytes)):
        with open(f, "rb") as file:
            return file.read(n)
    start = f.tell()
    head = f.read(n)
    f.seek(start)
    return head


def load(f, map_location=None, weights_only: bool | None = None):
    """Read what gg.save wrote. map_location ('cpu', 'cuda', 'cuda:N' or a device) puts every
    tensor there; by default each goes back to the device it was saved from. weights_only is
    accepted for torch.load's signature: gg.load never unpickles, so it is always safe."""
    device = None if map_location is None else backend.as_device(map_location)
    if hasattr(f, "read"):
        where = repr(getattr(f, "name", f))
        source = f if hasattr(f, "seek") else io.BytesIO(f.read())
    else:
        where = repr(os.fspath(f))
        if not os.path.exists(os.fspath(f)):
            raise FileNotFoundError(f"gg.load: no such file: {where}")
        source = os.fspath(f)
    manifest, arrays = _read_archive(source, where)
    if device is not None and device.type == "cuda":
        backend.xp_for(device)  # a clear error when no GPU is usable
    return _Reader(where, arrays, device).build(manifest["tree"])
