"""Containers: modules that hold other modules."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from gpugrad.nn.modules.module import Module


class Sequential(Module):
    """Modules applied in order; Sequential(m0, m1, ...) or Sequential(OrderedDict(name=m))."""

    def __init__(self, *args: Module):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], (dict, OrderedDict)):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), module)

    def _key(self, index: int) -> str:
        size = len(self._modules)
        if not -size <= index < size:
            raise IndexError(
                f"index {index} is out of range for {type(self).__name__} of length {size}"
            )
        return list(self._modules)[index % size]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return self._modules[self._key(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, self._key(index), module)

    def __delitem__(self, index) -> None:
        keys = list(self._modules)[index] if isinstance(index, slice) else [self._key(index)]
        for key in keys:
            del self._modules[key]
        # renumber so that indices and keys stay in step, as torch does
        self.__dict__["_modules"] = OrderedDict(
            (str(i), module) for i, module in enumerate(self._modules.values())
        )

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> Sequential:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        if not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        items = list(self._modules.values())
        size = len(items)
        if not -size <= index <= size:
            raise IndexError(
                f"index {index} is out of range for {type(self).__name__} of length {size}"
            )
        items.insert(index if index >= 0 else index + size, module)
        self.__dict__["_modules"] = OrderedDict((str(i), m) for i, m in enumerate(items))
        return self

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x
