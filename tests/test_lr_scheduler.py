"""gg.optim.lr_scheduler against torch.optim.lr_scheduler: the lr (and OneCycleLR's momentum /
beta1) of every param group equal to torch's, bit for bit, at every step; state_dict round trips
through gg.save / gg.load; torch's argument checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpugrad as gg

torch = pytest.importorskip("torch")

CASES = {
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 0.95**e + 0.01 * e),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.9),
    "StepLR": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=4),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=7),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=8, power=2.0),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=6, eta_min=0.001),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=1e-3
    ),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=25),
    "OneCycleLR_linear_three_phase": lambda m, o: m.OneCycleLR(
        o,
        max_lr=0.4,
        epochs=5,
        steps_per_epoch=5,
        anneal_strategy="linear",
        three_phase=True,
        pct_start=0.25,
    ),
    "CyclicLR": lambda m, o: m.CyclicLR(o, base_lr=[0.01, 0.002], max_lr=0.1, step_size_up=4),
    "CyclicLR_triangular2_uneven": lambda m, o: m.CyclicLR(
        o, base_lr=0.01, max_lr=[0.2, 0.05], step_size_up=3, step_size_down=5, mode="triangular2",
        base_momentum=0.7, max_momentum=[0.95, 0.9]
    ),
    "CyclicLR_exp_range_no_momentum": lambda m, o: m.CyclicLR(
        o, 0.001, 0.1, step_size_up=5, mode="exp_range", gamma=0.97, cycle_momentum=False
    ),
    "CyclicLR_scale_fn_iterations": lambda m, o: m.CyclicLR(
        o, 0.001, 0.1, step_size_up=2, scale_fn=lambda x: 1 / (1 + 0.1 * x),
        scale_mode="iterations"
    ),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o,
        [m.LinearLR(o, start_factor=0.2, total_iters=4), m.CosineAnnealingLR(o, T_max=10)],
        milestones=[5],
    ),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ExponentialLR(o, gamma=0.9), m.StepLR(o, step_size=4, gamma=0.5)]
    ),
}


def _optimizers(kind="SGD"):
    """Two param groups with different lrs, in both libraries."""
    pairs = []
    for lib in (gg, torch):
        a, b = lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)
        groups = [{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.03}]
        if kind == "SGD":
            pairs.append(lib.optim.SGD(groups, lr=0.1, momentum=0.9))
        else:
            pairs.append(lib.optim.Adam(groups, lr=0.1))
    return pairs


def _lrs(opt):
    return [g["lr"] for g in opt.param_groups]


def _drive(ours, theirs, sched, tsched, steps):
    for _ in range(steps):
        ours.step(), theirs.step()
        sched.step(), tsched.step()
        assert _lrs(ours) == _lrs(theirs)
        assert sched.get_last_lr() == tsched.get_last_lr()


@pytest.mark.parametrize("name", list(CASES))
def test_lr_equals_torch_at_every_step(name):
    ours, theirs = _optimizers()
    sched, tsched = (
        CASES[name](gg.optim.lr_scheduler, ours),
        CASES[name](torch.optim.lr_scheduler, theirs),
    )
    assert _lrs(ours) == _lrs(theirs)  # the construction-time step
    _drive(ours, theirs, sched, tsched, 24 if name.startswith("OneCycle") else 30)
    assert [g.get("momentum") for g in ours.param_groups] == [
        g.get("momentum") for g in theirs.param_groups
    ]


def test_one_cycle_cycles_beta1_of_adam_and_refuses_extra_steps():
    ours, theirs = _optimizers("Adam")
    make = lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=10, base_momentum=0.8)  # noqa: E731
    sched, tsched = make(gg.optim.lr_scheduler, ours), make(torch.optim.lr_scheduler, theirs)
    for _ in range(10):  # steps 1..10 of 10
        _drive(ours, theirs, sched, tsched, 1)
        assert [g["betas"] for g in ours.param_groups] == [g["betas"] for g in theirs.param_groups]
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        sched.step()


def test_cyclic_lr_cycles_beta1_of_adam():
    ours, theirs = _optimizers("Adam")
    make = lambda m, o: m.CyclicLR(o, 0.01, 0.2, step_size_up=3, base_momentum=0.8)  # noqa: E731
    sched, tsched = make(gg.optim.lr_scheduler, ours), make(torch.optim.lr_scheduler, theirs)
    assert [g["betas"] for g in ours.param_groups] == [g["betas"] for g in theirs.param_groups]
    for _ in range(14):
        _drive(ours, theirs, sched, tsched, 1)
        assert [g["betas"] for g in ours.param_groups] == [g["betas"] for g in theirs.param_groups]


def test_cyclic_lr_state_dict_keeps_a_callable_objects_attributes(tmp_path):
    class Decay:
        def __init__(self):
            self.rate = 0.5

        def __call__(self, x):
            return self.rate**x

    ours, _ = _optimizers()
    scale = Decay()
    sched = gg.optim.lr_scheduler.CyclicLR(ours, 0.01, 0.1, step_size_up=2, scale_fn=scale)
    scale.rate = 0.25
    state = sched.state_dict()
    assert state["_scale_fn_custom"] == {"rate": 0.25}
    gg.save(state, tmp_path / "sched")
    fresh, _ = _optimizers()
    other = Decay()
    again = gg.optim.lr_scheduler.CyclicLR(fresh, 0.01, 0.1, step_size_up=2, scale_fn=other)
    again.load_state_dict(gg.load(tmp_path / "sched"))
    assert other.rate == 0.25 and again.last_epoch == sched.last_epoch
    plain = gg.optim.lr_scheduler.CyclicLR(_optimizers()[0], 0.01, 0.1, scale_fn=lambda x: 1.0)
    assert plain.state_dict()["_scale_fn_custom"] is None


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"mode": "max", "factor": 0.5, "patience": 1},
        {"threshold_mode": "abs", "threshold": 0.1, "cooldown": 2},
        {"patience": 0, "min_lr": [0.02, 0.001], "factor": 0.3},
    ],
)
def test_reduce_on_plateau(options):
    ours, theirs = _optimizers()
    sched = gg.optim.lr_scheduler.ReduceLROnPlateau(ours, **options)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **options)
    metrics = np.random.default_rng(0).uniform(0, 1, 40).cumsum() % 3
    for metric in metrics:
        sched.step(metric), tsched.step(metric)
        assert _lrs(ours) == _lrs(theirs) and sched.get_last_lr() == tsched.get_last_lr()
        assert (sched.num_bad_epochs, sched.cooldown_counter, sched.best) == (
            tsched.num_bad_epochs,
            tsched.cooldown_counter,
            tsched.best,
        )


def test_step_with_epoch_uses_the_closed_form_and_warns():
    for name in ("StepLR", "CosineAnnealingWarmRestarts", "LinearLR"):
        ours, theirs = _optimizers()
        sched, tsched = (
            CASES[name](gg.optim.lr_scheduler, ours),
            CASES[name](torch.optim.lr_scheduler, theirs),
        )
        for epoch in (
            (3, 7, 2.5, 11, 0.25) if name == "CosineAnnealingWarmRestarts" else (3, 7, 2, 11)
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tsched.step(epoch)
            if name == "CosineAnnealingWarmRestarts":
                sched.step(epoch)
            else:
                with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
                    sched.step(epoch)
            assert _lrs(ours) == _lrs(theirs), (name, epoch)


@pytest.mark.parametrize(
    "name",
    ["StepLR", "CosineAnnealingLR", "SequentialLR", "OneCycleLR", "MultiStepLR", "CyclicLR"],
)
def test_state_dict_round_trip_through_gg_save(name, tmp_path):
    ours, theirs = _optimizers()
    sched, tsched = (
        CASES[name](gg.optim.lr_scheduler, ours),
        CASES[name](torch.optim.lr_scheduler, theirs),
    )
    _drive(ours, theirs, sched, tsched, 6)
    gg.save({"optimizer": ours.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "ckpt")
    checkpoint = gg.load(tmp_path / "ckpt")
    resumed, _ = _optimizers()  # as in torch: build both, then load both
    again = CASES[name](gg.optim.lr_scheduler, resumed)
    resumed.load_state_dict(checkpoint["optimizer"])
    again.load_state_dict(checkpoint["scheduler"])
    for _ in range(8):
        resumed.step(), ours.step(), theirs.step()
        again.step(), sched.step(), tsched.step()
        assert _lrs(resumed) == _lrs(ours) == _lrs(theirs)


def test_lambda_state_dict_and_resume_with_last_epoch():
    ours, _ = _optimizers()
    sched = gg.optim.lr_scheduler.LambdaLR(ours, lambda e: 1 / (e + 1))
    assert sched.state_dict()["lr_lambdas"] == [None, None]
    fresh, _ = _optimizers()
    with pytest.raises(KeyError, match="initial_lr"):
        gg.optim.lr_scheduler.StepLR(fresh, 2, last_epoch=3)


def test_bad_arguments():
    ours, theirs = _optimizers()
    lrs = gg.optim.lr_scheduler
    cases = [
        (TypeError, "list is not an Optimizer", lambda: lrs.StepLR([], 2)),
        (ValueError, "Expected 2 lr_lambdas, but got 1", lambda: lrs.LambdaLR(ours, [lambda e: 1])),
        (TypeError, "lr_lambda should be a function", lambda: lrs.LambdaLR(ours, 3)),
        (ValueError, "either total_steps OR", lambda: lrs.OneCycleLR(ours, 0.1)),
        (
            ValueError,
            "Expected positive integer T_0",
            lambda: lrs.CosineAnnealingWarmRestarts(ours, 0),
        ),
        (ValueError, "Factor should be < 1.0", lambda: lrs.ReduceLROnPlateau(ours, factor=1.0)),
        (ValueError, "mode avg is unknown", lambda: lrs.ReduceLROnPlateau(ours, mode="avg")),
        (ValueError, "mode is invalid and scale_fn is None",
         lambda: lrs.CyclicLR(ours, 0.01, 0.1, mode="cosine")),
        (ValueError, "base_lr must have the same length",
         lambda: lrs.CyclicLR(ours, [0.01], 0.1)),
        (ValueError, "optimizer must support momentum or beta1",
         lambda: lrs.CyclicLR(gg.optim.Adagrad([gg.zeros(2, requires_grad=True)]), 0.01, 0.1)),
        (
            ValueError,
            "max_lr must have the same length",
            lambda: lrs.OneCycleLR(ours, [0.1], total_steps=3),
        ),
        (ValueError, "Starting multiplicative factor", lambda: lrs.LinearLR(ours, start_factor=0)),
        (
            ValueError,
            "number of milestone points",
            lambda: lrs.SequentialLR(ours, [lrs.StepLR(ours, 2)], [3]),
        ),
        (
            ValueError,
            "belong to the same optimizer",
            lambda: lrs.ChainedScheduler([lrs.StepLR(ours, 2), lrs.StepLR(_optimizers()[0], 2)]),
        ),
        (
            ValueError,
            "does not support `ReduceLROnPlateau`",
            lambda: lrs.ChainedScheduler([lrs.ReduceLROnPlateau(ours)]),
        ),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
