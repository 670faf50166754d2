"""Learning-rate schedules: Transformers 5's curves step for step, and resumable state."""

from __future__ import annotations

import pickle

import pytest

torch = pytest.importorskip("torch")

from polyformers import optimization  # noqa: E402
from polyformers.optimization import SchedulerType, get_scheduler  # noqa: E402

LR = 0.1
STEPS = 30

# (name, num_warmup_steps, num_training_steps, scheduler_specific_kwargs)
CASES = [
    ("linear", 5, 25, {}),
    ("linear", 0, 25, {}),
    ("cosine", 5, 25, {}),
    ("cosine", 3, 20, {"num_cycles": 1.5}),
    ("cosine_with_restarts", 5, 25, {"num_cycles": 3}),
    ("polynomial", 5, 25, {"lr_end": 1e-4, "power": 2.0}),
    ("polynomial", 4, 20, {}),
    ("constant", None, None, {}),
    ("constant_with_warmup", 7, None, {}),
    ("inverse_sqrt", 5, None, {}),
    ("inverse_sqrt", 4, None, {"timescale": 10}),
    ("cosine_with_min_lr", 5, 25, {"min_lr_rate": 0.1}),
    ("cosine_with_min_lr", 5, 25, {"min_lr": 0.005}),
    ("cosine_warmup_with_min_lr", 5, 25, {"min_lr_rate": 0.1}),
    ("cosine_warmup_with_min_lr", 5, 25, {"min_lr_rate": 0.1, "warmup_lr_rate": 0.2}),
    ("warmup_stable_decay", 5, 25, {"num_decay_steps": 10}),
    (
        "warmup_stable_decay", 5, None,
        {"num_decay_steps": 8, "num_stable_steps": 6, "warmup_type": "cosine", "decay_type": "1-sqrt",
         "min_lr_ratio": 0.1},
    ),
    ("warmup_stable_decay", 4, 25, {"num_decay_steps": 10, "warmup_type": "1-sqrt", "decay_type": "linear"}),
]


def make_optimizer(lr: float = LR) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def lr_curve(scheduler, optimizer, steps: int = STEPS) -> list[float]:
    curve = []
    for _ in range(steps):
        curve.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return curve


@pytest.mark.parametrize("name, warmup, total, kwargs", CASES, ids=lambda v: str(v))
def test_curve_equals_transformers(name, warmup, total, kwargs):
    transformers_optimization = pytest.importorskip("transformers.optimization")
    ours_optimizer, their_optimizer = make_optimizer(), make_optimizer()
    ours = get_scheduler(name, ours_optimizer, warmup, total, scheduler_specific_kwargs=dict(kwargs))
    theirs = transformers_optimization.get_scheduler(
        name, their_optimizer, warmup, total, scheduler_specific_kwargs=dict(kwargs)
    )
    assert type(ours) is type(theirs) is torch.optim.lr_scheduler.LambdaLR
    assert lr_curve(ours, ours_optimizer) == lr_curve(theirs, their_optimizer)


def test_direct_functions_equal_transformers():
    transformers_optimization = pytest.importorskip("transformers.optimization")
    builders = [
        ("get_constant_schedule", {}),
        ("get_constant_schedule_with_warmup", {"num_warmup_steps": 4}),
        ("get_linear_schedule_with_warmup", {"num_warmup_steps": 4, "num_training_steps": 20}),
        ("get_cosine_schedule_with_warmup", {"num_warmup_steps": 4, "num_training_steps": 20}),
        (
            "get_cosine_with_hard_restarts_schedule_with_warmup",
            {"num_warmup_steps": 4, "num_training_steps": 20, "num_cycles": 2},
        ),
        ("get_polynomial_decay_schedule_with_warmup", {"num_warmup_steps": 4, "num_training_steps": 20, "power": 0.5}),
        ("get_inverse_sqrt_schedule", {"num_warmup_steps": 0}),
        ("get_wsd_schedule", {"num_warmup_steps": 3, "num_decay_steps": 5, "num_training_steps": 20}),
    ]
    for function, kwargs in builders:
        ours_optimizer, their_optimizer = make_optimizer(), make_optimizer()
        ours = getattr(optimization, function)(ours_optimizer, **kwargs)
        theirs = getattr(transformers_optimization, function)(their_optimizer, **kwargs)
        assert lr_curve(ours, ours_optimizer) == lr_curve(theirs, their_optimizer), function


def test_last_epoch_resumes_like_transformers():
    transformers_optimization = pytest.importorskip("transformers.optimization")
    curves = []
    for module in (optimization, transformers_optimization):
        optimizer = make_optimizer()
        for group in optimizer.param_groups:
            group["initial_lr"] = LR
        scheduler = module.get_linear_schedule_with_warmup(optimizer, 5, 25, last_epoch=9)
        curves.append(lr_curve(scheduler, optimizer, 10))
    assert curves[0] == curves[1]


RESUME_CASES = [case for case in CASES if case[0] != "constant"][::2]


@pytest.mark.parametrize("name, warmup, total, kwargs", RESUME_CASES, ids=lambda v: str(v))
def test_state_dict_round_trip_continues_the_curve(name, warmup, total, kwargs, tmp_path):
    optimizer = make_optimizer()
    scheduler = get_scheduler(name, optimizer, warmup, total, scheduler_specific_kwargs=dict(kwargs))
    full = lr_curve(scheduler, optimizer)

    optimizer = make_optimizer()
    scheduler = get_scheduler(name, optimizer, warmup, total, scheduler_specific_kwargs=dict(kwargs))
    first = lr_curve(scheduler, optimizer, 12)
    # What a Trainer checkpoint holds: torch.save of both state dicts (the partials pickle).
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp_path / "ckpt.pt")
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=False)

    resumed_optimizer = make_optimizer()
    resumed = get_scheduler(name, resumed_optimizer, warmup, total, scheduler_specific_kwargs=dict(kwargs))
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["scheduler"])
    assert first + lr_curve(resumed, resumed_optimizer, STEPS - 12) == full


def test_schedules_pickle():
    optimizer = make_optimizer()
    scheduler = get_scheduler("cosine", optimizer, 3, 10)
    state = pickle.loads(pickle.dumps(scheduler.state_dict()))
    assert state["last_epoch"] == 0


def test_reduce_on_plateau():
    optimizer = make_optimizer()
    scheduler = get_scheduler(
        "reduce_lr_on_plateau", optimizer, scheduler_specific_kwargs={"patience": 1, "factor": 0.5}
    )
    assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    for _ in range(3):
        optimizer.step()
        scheduler.step(1.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(LR * 0.5)


def test_scheduler_type_values():
    transformers_utils = pytest.importorskip("transformers.trainer_utils")
    theirs = {member.value for member in transformers_utils.SchedulerType}
    ours = {member.value for member in SchedulerType}
    assert ours == theirs - {"greedy"}
    assert SchedulerType("cosine") is SchedulerType.COSINE


def test_errors():
    optimizer = make_optimizer()
    with pytest.raises(ValueError, match="'linear' schedule needs num_warmup_steps"):
        get_scheduler("linear", optimizer, num_training_steps=10)
    with pytest.raises(ValueError, match="'cosine' schedule needs num_training_steps"):
        get_scheduler("cosine", optimizer, num_warmup_steps=2)
    with pytest.raises(ValueError, match="'inverse_sqrt' schedule needs num_warmup_steps"):
        get_scheduler("inverse_sqrt", optimizer)
    with pytest.raises(ValueError, match="'cosine_annealing' is not a valid SchedulerType; expected one of 'linear'"):
        get_scheduler("cosine_annealing", optimizer, 1, 10)
    with pytest.raises(ValueError, match=r"lr_end \(0.5\) must be smaller than the optimizer's initial lr \(0.1\)"):
        get_scheduler("polynomial", optimizer, 1, 10, scheduler_specific_kwargs={"lr_end": 0.5})
    with pytest.raises(ValueError, match="pass min_lr or min_lr_rate"):
        get_scheduler("cosine_with_min_lr", optimizer, 1, 10)
    with pytest.raises(ValueError, match="Pass one of min_lr"):
        both = {"min_lr": 0.01, "min_lr_rate": 0.1}
        get_scheduler("cosine_with_min_lr", optimizer, 1, 10, scheduler_specific_kwargs=both)
    with pytest.raises(ValueError, match="needs the length of the stable phase"):
        get_scheduler("warmup_stable_decay", optimizer, 1, scheduler_specific_kwargs={"num_decay_steps": 3})
    with pytest.raises(ValueError, match="decay_type='exp' is not supported"):
        optimization.get_wsd_schedule(optimizer, 1, 3, 10, decay_type="exp")
    with pytest.raises(TypeError):  # a schedule's own arguments are checked by Python
        get_scheduler("linear", optimizer, 1, 10, scheduler_specific_kwargs={"num_cycles": 2})
