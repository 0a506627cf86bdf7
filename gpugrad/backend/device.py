"""Device: 'cpu' or 'cuda:N', compared equal to its string form."""
from __future__ import annotations


class Device:
    __slots__ = ("type", "index")

    def __init__(self, type: str, index: int | None = None):
        if isinstance(type, str) and ":" in type and index is None:  # gg.device("cuda:1")
            type, index = _parse(type)
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
        kind, index = _parse(device)
        return _CPU if kind == "cpu" else Device("cuda", 0 if index is None else index)
    if hasattr(device, "type") and hasattr(device, "index"):  # e.g. a torch.device
        return Device(device.type, device.index)
    raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {type(device).__name__}")


def _parse(text: str) -> tuple[str, int | None]:
    """'cpu' | 'cpu:N' (torch's spelling of the one CPU: N is ignored) | 'cuda' | 'cuda:N'."""
    kind, colon, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (colon and not (index.isascii() and index.isdigit())):
        raise ValueError(f"bad device string {text!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    return kind, int(index) if colon else None
