"""gg.optim: optimizers."""
