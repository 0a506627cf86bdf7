"""Device: 'cpu' or 'cuda:N', compared equal to its string form."""
from __future__ import annotations


class Device:
    __slots__ = ("type", "index")

    def __init__(self, type: str, index: int | None = None):
        if isinstance(type, str) and ":" in type and index is None:  # gg.device("cuda:1")
            type, _, text = type.partition(":")
            if type != "cuda" or not text.isdigit():
                raise ValueError(f"bad device string {type + ':' + text!r}: expected 'cuda:N'")
            index = int(text)
        if type not in ("cpu", "cuda"):
            raise ValueError(f"unknown device type {type!r}: expected 'cpu' or 'cuda[:N]'")
        self.type = type
        self.index = None if type == "cpu" else (0 if index is None else int(index))

    def __str__(self) -> str:
        return "cpu" if self.type == "cpu" else f"cuda:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = as_device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


_CPU = Device("cpu")


def as_device(device) -> Device:
    """Parse None | 'cpu' | 'cuda' | 'cuda:N' | Device into a Device (None means cpu)."""
    if device is None:
        return _CPU
    if isinstance(device, Device):
        return device
    if isinstance(device, str):
        kind, _, index = device.partition(":")
        if kind == "cpu" and not index:
            return _CPU
        if kind == "cuda":
            if index and not index.isdigit():
                raise ValueError(f"bad device string {device!r}: expected 'cuda:N'")
            return Device("cuda", int(index) if index else 0)
        raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    if hasattr(device, "type") and hasattr(device, "index"):  # e.g. a torch.device
        return Device(device.type, device.index)
    raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {type(device).__name__}")
