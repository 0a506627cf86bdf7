"""MLP: gpugrad's own stack of Linear layers on the fused bias + activation path."""

from __future__ import annotations

from gpugrad.nn import functional as F
from gpugrad.nn.modules.activation import GELU, ReLU, Sigmoid, SiLU, Tanh
from gpugrad.nn.modules.linear import Linear, _check_features
from gpugrad.nn.modules.module import Module
from gpugrad.tensor import Tensor

_ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "gelu": GELU, "silu": SiLU}
_FUSED = ("relu", "sigmoid", "tanh")  # derivative from the output: bias + activation fuse


class MLP(Module):
    """Linear layers of sizes[0] -> sizes[1] -> ... -> sizes[-1] with `activation` ('relu',
    'sigmoid', 'tanh', 'gelu' or 'silu') between them and none after the last.

    Hidden layers run gg.nn.functional.linear_act (matmul, then bias + activation fused in one
    pass; gelu and silu, whose derivatives need the input, run their own fused kernel after). The children are numbered as in nn.Sequential(Linear, Act, Linear, Act, ..., Linear):
    Linear layers at even indices, activations at odd ones, so state_dict keys are '0.weight',
    '0.bias', '2.weight', '2.bias', ..., identical to that torch.nn.Sequential's keys: either
    state_dict loads into the other. mlp[i] and len(mlp) index the children likewise."""

    def __init__(self, sizes, activation: str = "relu", bias: bool = True, device=None, dtype=None):
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output size, got {sizes}")
        _check_features("MLP", **{f"sizes[{i}]": s for i, s in enumerate(sizes)})
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"MLP: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        self.sizes, self.activation = tuple(int(s) for s in sizes), activation
        layers = len(sizes) - 1
        for i in range(layers):
            self.add_module(
                str(2 * i), Linear(sizes[i], sizes[i + 1], bias=bias, device=device, dtype=dtype)
            )
            if i < layers - 1:
                self.add_module(str(2 * i + 1), _ACTIVATIONS[activation]())

    @property
    def linears(self) -> list[Linear]:
        """The Linear layers, input side first."""
        return [module for module in self._modules.values() if isinstance(module, Linear)]

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def forward(self, x: Tensor) -> Tensor:
        *hidden, last = self.linears
        fused = self.activation in _FUSED
        for layer in hidden:
            x = F.linear_act(x, layer.weight, layer.bias, self.activation if fused else "identity")
            if not fused:
                x = getattr(F, self.activation)(x)
        return F.linear_act(x, last.weight, last.bias, "identity")
