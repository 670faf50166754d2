"""Fast CPU inference for every PyTorch model: oneDNN-prepacked weights, fused post-ops, a bf16 mode.

    model = BertModel.from_pretrained(path).optimize_for_inference()                  # fp32
    model = BertModel.from_pretrained(path).optimize_for_inference(torch.bfloat16)    # bf16 GEMMs

Nothing about the model changes that training, ``state_dict()`` or ``save_pretrained`` can see:
the ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` parameters stay where they are, untouched. Each
such module gets an instance-level ``forward`` that takes the fast path only when it computes the
same thing as the plain one would, and otherwise calls the plain ``forward``:

- the module is in eval mode (its declared followers too) and no gradient is needed
  (``torch.no_grad()`` / ``torch.inference_mode()``, or neither the input nor the weight requires
  grad), on CPU, with a float32 (or, in bf16 mode, bfloat16) input;
- the packed copy of the weight (in oneDNN's blocked layout) is made on first use, kept outside the
  state dict, and made again whenever the weight (or a folded norm's buffers) changed: ``_version``
  and ``data_ptr`` of every tensor it was made from are compared at each call.

The fast path calls oneDNN directly on ordinary dense tensors (``torch.ops.mkldnn._linear_pointwise``,
``_convolution_pointwise``), so activations are never converted to or from oneDNN's own layout.
Convolutions return channels-last tensors, which the next convolution reads without a copy.

**Fusions** are declared, never guessed: a module class lists chains in ``_inference_fusions``,
each a leader (the attribute name of a Linear or Conv) followed by what its forward applies next
to exactly that output, in order: a frozen/eval batch norm (folded into the conv's weights) and/or
one activation (a oneDNN post-op: GELU erf/tanh, ReLU, tanh, sigmoid, SiLU)::

    class BertIntermediate(nn.Module):
        _inference_fusions = (("dense", "intermediate_act_fn"),)

While the declaring module's forward runs, its leader applies the followers itself and each follower
hands that exact tensor through unchanged. A follower that never sees the leader's output (a wrong
declaration) raises an error naming the module, rather than computing something else. Classes of
core layers, and code outside plugins, declare with :func:`register_fusions`.

**Shared inputs** are declared too: ``_inference_shared_input = (("query", "key", "value"),)`` says
the module's forward calls these linears on one and the same input tensor; they then run as one GEMM
over their stacked weights (see :class:`_Group`; where the declaration does not hold for an
instance, e.g. cross-attention, it finds out on the first call and runs them separately).
:func:`register_shared_input` declares for classes that cannot carry the attribute.

**Which GEMM**: ``backend="auto"`` (the default) times torch's default fp32 GEMM (MKL) and oneDNN's
at one transformer-sized shape, once per process (:func:`gemm_calibration`), and prepacks linears
for oneDNN only where oneDNN is clearly (15 %) faster, so a CPU whose default GEMM is already at its peak is not
slowed down. ``"onednn"`` and ``"default"`` force the choice. Conv2d always goes to oneDNN (torch's
own CPU convolution is oneDNN already; prepacking only removes work); Conv1d in fp32 only when
grouped or with ``backend="onednn"`` (run as a height-1 Conv2d, an ungrouped one measured slower,
a grouped one 2.5x faster), in bf16 always.

**bf16 mode** (``dtype=torch.bfloat16``, on CPUs with AVX512-BF16 or AMX): packed weights are
bfloat16, each GEMM's input is cast to bfloat16 and its output comes back in its input's dtype, so
the residual stream, norms and softmax of a transformer stay float32; a fused Linear/Conv ->
activation (and conv -> norm) keeps its bfloat16 output, which feeds the next GEMM directly. Floating
outputs of the model are cast back to float32. Measured cost: see ``bench/bench_inference.py``.

Memory: the packed copies are a second copy of the weights (half the size in bf16).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import statistics
import threading
import time
import warnings
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["GemmCalibration", "bf16_supported", "gemm_calibration", "is_optimized", "optimize_for_inference", "register_fusions", "register_shared_input", "restore"]

BACKENDS = ("auto", "onednn", "default")
_STATE = "_pf_inference"  # instance attribute: the module's states (a list); never a buffer or parameter
_PLAN = "_pf_inference_plan"  # on the optimised model: (dtype, backend)


# --- which GEMM: a one-time measurement per process ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GemmCalibration:
    """fp32 GEMM speed of torch's default path and of oneDNN with a prepacked weight, at one shape."""

    shape: tuple[int, int, int]  # (M, K, N)
    default_gflops: float
    onednn_gflops: float

    # oneDNN must win clearly: within timing noise of the default GEMM (Intel CPUs, where MKL is
    # already at peak), packing costs memory and can lose on small batches.
    margin: float = 1.15

    @property
    def backend(self) -> str:
        return "onednn" if self.onednn_gflops > self.margin * self.default_gflops else "default"


@functools.cache
def gemm_calibration(m: int = 512, k: int = 768, n: int = 768, repeats: int = 7) -> GemmCalibration:
    """Time ``F.linear`` against oneDNN's prepacked linear (interleaved, medians); cached per process.

    About 50 ms on a 2-core machine. The shape is one of BERT-base's projections on 4 x 128 tokens.
    """
    if not torch.backends.mkldnn.is_available():
        return GemmCalibration((m, k, n), 1.0, 0.0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(m, k, generator=gen)
    weight = torch.randn(n, k, generator=gen) * 0.02
    bias = torch.zeros(n)
    packed = _pack_linear_weight(weight)
    candidates = {
        "default": lambda: F.linear(x, weight, bias),
        "onednn": lambda: torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], ""),
    }
    times: dict[str, list[float]] = {name: [] for name in candidates}
    with torch.inference_mode():
        for f in candidates.values():
            f()
        for _ in range(repeats):
            for name, f in candidates.items():
                start = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - start)
    flop = 2.0 * m * k * n
    result = GemmCalibration((m, k, n), flop / statistics.median(times["default"]) / 1e9, flop / statistics.median(times["onednn"]) / 1e9)
    logger.info("fp32 GEMM %s: default %.0f GFLOP/s, oneDNN %.0f GFLOP/s -> %s", result.shape, result.default_gflops, result.onednn_gflops, result.backend)
    return result


def bf16_supported() -> bool:
    """True when oneDNN runs bfloat16 GEMMs on native instructions (AVX512-BF16 or AMX) here."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# --- declarations -----------------------------------------------------------------------------------


_REGISTERED_FUSIONS: dict[type, tuple[tuple[str, ...], ...]] = {}


def register_fusions(cls: type, fusions: Iterable[Iterable[str]]) -> None:
    """Declare the fusions of ``cls`` (same format as the ``_inference_fusions`` class attribute).

    For classes whose source cannot carry the attribute (core layers, third-party modules). Each
    chain is ``(leader, *followers)``: attribute names, the leader a Linear/Conv1d/Conv2d, the
    followers what ``cls.forward`` applies to exactly the leader's output, in that order.
    """
    _REGISTERED_FUSIONS[cls] = tuple(tuple(chain) for chain in fusions)


def _declared(module: nn.Module, attribute: str, registered: dict[type, tuple[tuple[str, ...], ...]]) -> tuple[tuple[str, ...], ...]:
    """What the class of ``module`` (or its nearest base) declares: by registration or by ``attribute``."""
    for cls in type(module).__mro__:
        if cls in registered:
            return registered[cls]
        if attribute in vars(cls):
            return tuple(tuple(names) for names in vars(cls)[attribute])
    return ()


_REGISTERED_SHARED_INPUTS: dict[type, tuple[tuple[str, ...], ...]] = {}


def register_shared_input(cls: type, groups: Iterable[Iterable[str]]) -> None:
    """Declare linears that ``cls.forward`` calls on one and the same input tensor (same format as
    the ``_inference_shared_input`` class attribute), e.g. ``[("query", "key", "value")]``."""
    _REGISTERED_SHARED_INPUTS[cls] = tuple(tuple(group) for group in groups)


def _register_core_layers() -> None:
    from .layers import resnet

    register_fusions(resnet.ResNetConvLayer, [("convolution", "normalization", "activation")])
    register_fusions(resnet.ResNetShortCut, [("convolution", "normalization")])
    register_fusions(resnet.TimmBottleneck, [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")])
    register_fusions(resnet.TimmBasicBlock, [("conv1", "bn1"), ("conv2", "bn2")])
    register_fusions(resnet.TimmResNet, [("conv1", "bn1")])
    # timm's downsample: nn.Sequential(conv, FrozenBatchNorm2d); found structurally in _sequential_fusions.


def _sequential_fusions(module: nn.Module) -> tuple[tuple[str, ...], ...]:
    """nn.Sequential runs its children in order: a conv followed directly by a batch norm folds."""
    if type(module) is not nn.Sequential:
        return ()
    names = list(module._modules)
    return tuple(
        (a, b)
        for a, b in zip(names, names[1:])
        if _conv_kind(module._modules[a]) is not None and _foldable_norm(module._modules[b]) is not None
    )


# --- what may be fused -------------------------------------------------------------------------------


def _activation_post_op(module: Any) -> tuple[str, list, str] | None:
    """oneDNN post-op (attr, scalars, algorithm) equal to activation ``module``, or None."""
    from . import activations

    if isinstance(module, nn.GELU):
        return ("gelu", [], module.approximate)
    if type(module) is activations.GELUPythonActivation:
        return ("gelu", [], "none")
    if type(module) in (activations.NewGELUActivation, activations.FastGELUActivation):
        return ("gelu", [], "tanh")
    simple = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "swish"}
    if type(module) in simple:
        return (simple[type(module)], [], "")
    return None


class _FoldedNorm:
    """A frozen/eval batch norm seen as the per-channel affine ``x * scale + shift``."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def tensors(self) -> list[torch.Tensor]:
        m = self.module
        return [t for t in (m.weight, m.bias, m.running_mean, m.running_var) if t is not None]

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.module
        scale = (m.running_var + m.eps).rsqrt()
        shift = -m.running_mean * scale
        if m.weight is not None:
            scale, shift = scale * m.weight, shift * m.weight + m.bias
        return scale, shift


def _foldable_norm(module: Any) -> _FoldedNorm | None:
    from .layers.resnet import FrozenBatchNorm2d

    if isinstance(module, FrozenBatchNorm2d):
        return _FoldedNorm(module)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.track_running_stats and module.running_var is not None:
        return _FoldedNorm(module)
    return None


def _conv_kind(module: Any) -> int | None:
    """1 or 2 for a Conv1d / Conv2d whose padding oneDNN takes as given (zeros, numeric), else None."""
    for cls, dims in ((nn.Conv1d, 1), (nn.Conv2d, 2)):
        if type(module) is cls or (isinstance(module, cls) and type(module).__name__ == f"Parametrized{cls.__name__}"):
            if module.padding_mode == "zeros" and module.padding != "same":
                return dims
    return None


# --- per-thread fusion bookkeeping ---------------------------------------------------------------------

_local = threading.local()


def _armed() -> dict[int, list]:
    """{id(leader): [fused output or None, followers still to pass it]} for the scopes running in this thread."""
    armed = getattr(_local, "armed", None)
    if armed is None:
        armed = _local.armed = {}
    return armed


# --- the per-module states -----------------------------------------------------------------------------


def _tensors_key(tensors: Iterable[torch.Tensor]) -> tuple:
    """Changes when any tensor is modified in place or replaced. Tensors made under
    ``torch.inference_mode`` have no version counter: for them only replacement is seen."""
    return tuple((-1 if t.is_inference() else t._version, t.data_ptr()) for t in tensors)


class _ModuleState:
    """What an optimised module holds besides its parameters: never in the state dict, not pickled as tensors."""

    _cache_fields: tuple[str, ...] = ()

    def __getstate__(self) -> dict[str, Any]:
        return {k: (None if k in self._cache_fields else v) for k, v in self.__dict__.items()}


class _Leader(_ModuleState):
    """A Linear or Conv whose fast path runs on oneDNN with a prepacked weight and fused followers."""

    _cache_fields = ("packed", "packed_bias", "key")

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        self.module = module
        self.dtype = dtype  # of the packed weight and the GEMM's input
        self.bf16 = dtype == torch.bfloat16  # the plan: bf16 inputs are accepted
        self.plain_forward = type(module).forward.__get__(module)
        self.followers: list[nn.Module] = []
        self.post_op: tuple[str, list, str] = ("none", [], "")
        self.norm: _FoldedNorm | None = None
        self.packed: torch.Tensor | None = None
        self.packed_bias: torch.Tensor | None = None
        self.key: tuple | None = None
        self.group: _Group | None = None  # linears only: the shared-input group it belongs to

    def parameters(self) -> list[torch.Tensor]:
        """The module's parameters (not module.weight: a parametrized weight is computed on access)."""
        module = self.module
        if module._modules:  # parametrizations hold the originals
            return list(module.parameters())
        return [p for p in module._parameters.values() if p is not None]

    def usable(self, x: torch.Tensor) -> bool:
        module = self.module
        if module.training or x.device.type != "cpu" or x.dtype not in (torch.float32, torch.bfloat16 if self.bf16 else torch.float32):
            return False
        params = self.parameters()
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
            return False
        return all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params)

    def sources(self) -> list[torch.Tensor]:
        """Every tensor the packed weight is made from (parametrizations' originals included)."""
        tensors = self.parameters()
        if self.norm is not None:
            tensors += self.norm.tensors()
        return tensors

    def current_key(self) -> tuple:
        return _tensors_key(self.sources())

    def weight_and_bias(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        weight = self.module.weight.detach()
        bias = self.module.bias.detach() if self.module.bias is not None else None
        if self.norm is not None:  # fold: norm(W x + b) = (scale W) x + (scale b + shift)
            scale, shift = self.norm.affine()
            weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
            bias = shift if bias is None else bias * scale + shift
        return weight, bias

    def ensure_packed(self, x: torch.Tensor) -> None:
        key = self.current_key()
        if key != self.key:
            with torch.no_grad():
                weight, bias = self.weight_and_bias()
                self.packed = self.pack(weight.to(self.dtype), x)
                self.packed_bias = bias.to(self.dtype) if bias is not None else None
            self.key = key

    def pack(self, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def run(self, x: torch.Tensor, post_op: tuple[str, list, str]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.usable(x) or any(f.training for f in self.followers):
            return self.plain_forward(x)
        if self.group is not None and (y := self.group.take(self, x)) is not None:
            return y
        self.ensure_packed(x)
        entry = _armed().get(id(self)) if self.followers else None
        # Inside a bf16 model's forward, outputs stay bf16 (autocast reconciles dtypes downstream);
        # a direct call on a submodule gets its input's dtype back.
        keep = getattr(_local, "low_precision", False)
        if entry is None:
            if self.norm is not None:  # the folded weights include the norm: not for a call outside its scope
                return self.plain_forward(x)
            y = self.run(x.to(self.dtype), ("none", [], ""))
            return y if keep else y.to(x.dtype)
        if entry[1]:
            raise RuntimeError(f"{_describe(self.module)} ran twice before its declared followers saw its first output; fix _inference_fusions.")
        y = self.run(x.to(self.dtype), self.post_op)
        y = y if keep else y.to(x.dtype)
        entry[0], entry[1] = y, len(self.followers)
        return y


def _pack_linear_weight(weight: torch.Tensor) -> torch.Tensor:
    """oneDNN's own blocked layout for the weight: up to 1.5x faster than a plain one at small
    batches (BERT-base's shapes at 16 tokens: fp32 90 -> 126 GFLOP/s, bf16 204 -> 300)."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), None)


class _LinearLeader(_Leader):
    def pack(self, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _pack_linear_weight(weight)

    def run(self, x: torch.Tensor, post_op: tuple[str, list, str]) -> torch.Tensor:
        attr, scalars, algorithm = post_op
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.packed_bias, attr, scalars, algorithm)


class _ConvLeader(_Leader):
    """Conv2d, and Conv1d run as a Conv2d of height 1 (its output is then (B, C, L) channels-last)."""

    def __init__(self, module: nn.Module, dtype: torch.dtype, dims: int) -> None:
        super().__init__(module, dtype)
        self.dims = dims
        padding = (0,) * dims if module.padding == "valid" else tuple(module.padding)
        self.padding = [0, *padding] if dims == 1 else list(padding)
        self.stride = [1, *module.stride] if dims == 1 else list(module.stride)
        self.dilation = [1, *module.dilation] if dims == 1 else list(module.dilation)

    def usable(self, x: torch.Tensor) -> bool:
        return x.dim() == self.dims + 2 and super().usable(x)

    def pack(self, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 1:
            weight = weight.unsqueeze(2)  # (O, I, 1, K)
        size = list(x.shape) if self.dims == 2 else [x.shape[0], x.shape[1], 1, x.shape[2]]
        return torch._C._nn.mkldnn_reorder_conv2d_weight(weight.contiguous().to_mkldnn(), self.padding, self.stride, self.dilation, self.module.groups, size)

    def ensure_packed(self, x: torch.Tensor) -> None:
        fresh = self.current_key() != self.key
        super().ensure_packed(x)
        if fresh and self.dtype == torch.bfloat16 and not self.bf16_agrees(x):
            # oneDNN's bf16 kernels give wrong results for some grouped shapes (e.g. 8 channels per
            # group, kernel 16; torch 2.13): this conv stays in float32.
            logger.warning("%s: oneDNN's bf16 convolution disagrees with float32 here; this layer runs in float32.", _describe(self.module))
            self.dtype, self.key = torch.float32, None
            super().ensure_packed(x)

    def bf16_agrees(self, x: torch.Tensor) -> bool:
        """Compare the packed bf16 conv with float32 on a crop of the first input, once per packing."""
        crop = x[:1, :, :64, :64] if self.dims == 2 else x[:1, :, :512]
        with torch.no_grad(), torch.autocast("cpu", enabled=False):  # the reference must be float32
            weight, bias = self.weight_and_bias()
            conv = F.conv2d if self.dims == 2 else F.conv1d
            stride, padding, dilation = (self.stride, self.padding, self.dilation) if self.dims == 2 else (self.stride[1:], self.padding[1:], self.dilation[1:])
            expected = conv(crop.float(), weight.float(), bias, stride, padding, dilation, self.module.groups)
            got = self.run(crop.to(torch.bfloat16), ("none", [], "")).float()
        return F.cosine_similarity(got.flatten().double(), expected.flatten().double(), dim=0).item() > 0.99

    def run(self, x: torch.Tensor, post_op: tuple[str, list, str]) -> torch.Tensor:
        attr, scalars, algorithm = post_op
        x4 = x.unsqueeze(2) if self.dims == 1 else x
        y = torch.ops.mkldnn._convolution_pointwise(x4, self.packed, self.packed_bias, self.padding, self.stride, self.dilation, self.module.groups, attr, scalars, algorithm)
        return y.squeeze(2) if self.dims == 1 else y


class _Group(_ModuleState):
    """Linears that their module's forward calls on one input tensor (``_inference_shared_input``).

    The first of them called computes all their outputs in one GEMM with the weights stacked (one
    wide GEMM runs faster than several narrow ones: BERT-base's query/key/value in bf16 on 8 x 128
    tokens, 10.2 -> 4.9 ms) and keeps the others' columns; a sibling called on that same tensor
    object, within the same forward of the declaring module, gets them (column slices of one tensor,
    not contiguous). A sibling called on another tensor, or never called, means the declaration does
    not hold for this instance (cross-attention, cached keys): its outputs are dropped and the group
    runs as separate linears from then on.
    """

    _cache_fields = ("packed", "packed_bias", "key")

    def __init__(self, module: nn.Module, members: list[_LinearLeader]) -> None:
        self.module = module  # the declaring module
        self.members = members
        self.dtype = members[0].dtype
        self.sizes = [member.module.out_features for member in members]
        self.split = False
        self.packed: torch.Tensor | None = None
        self.packed_bias: torch.Tensor | None = None
        self.key: tuple | None = None

    def ensure_packed(self) -> None:
        key = tuple(member.current_key() for member in self.members)
        if key != self.key:
            with torch.no_grad():
                weights, biases = zip(*(member.weight_and_bias() for member in self.members))
                self.packed = _pack_linear_weight(torch.cat(weights).to(self.dtype))
                self.packed_bias = torch.cat([w.new_zeros(w.shape[0]) if b is None else b for w, b in zip(weights, biases)]).to(self.dtype)
            self.key = key

    def give_up(self, why: str) -> None:
        self.split = True
        logger.debug("%s: %s; its linears run separately from now on.", _describe(self.module), why)

    def take(self, member: _LinearLeader, x: torch.Tensor) -> torch.Tensor | None:
        """``member``'s output on ``x`` from the shared GEMM, or None: ``member`` runs alone."""
        entry = _armed().get(id(self))
        if entry is None or self.split:
            return None
        source, pending = entry
        if source is x and id(member) in pending:
            return pending.pop(id(member))
        if pending:
            pending.clear()
            self.give_up(f"{_describe(member.module)} was called on another input than its siblings")
            return None
        if any(m.module.training for m in self.members):
            return None
        self.ensure_packed()
        y = torch.ops.mkldnn._linear_pointwise(x.to(self.dtype), self.packed, self.packed_bias, "none", [], "")
        if not getattr(_local, "low_precision", False):
            y = y.to(x.dtype)
        outputs = dict(zip((id(m) for m in self.members), y.split(self.sizes, dim=-1)))
        own = outputs.pop(id(member))
        entry[0], entry[1] = x, outputs
        return own


class _Follower(_ModuleState):
    """An activation or norm that hands its leader's fused output through unchanged."""

    def __init__(self, module: nn.Module, leader: _Leader, position: int) -> None:
        self.module = module
        self.leader = leader
        self.position = position  # 1 for the first follower of the chain
        self.plain_forward = type(module).forward.__get__(module)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        entry = _armed().get(id(self.leader))
        if entry is not None and entry[0] is x and len(self.leader.followers) - entry[1] + 1 == self.position:
            entry[1] -= 1
            return x
        return self.plain_forward(x, *args, **kwargs)


class _Scope(_ModuleState):
    """The module declaring fusions or shared inputs: arms its leaders and groups while its own forward runs."""

    def __init__(self, module: nn.Module, leaders: list[_Leader], groups: list[_Group]) -> None:
        self.module = module
        self.leaders = leaders
        self.groups = groups
        self.plain_forward = type(module).forward.__get__(module)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        armed = _armed()
        leader_keys = [id(leader) for leader in self.leaders if id(leader) not in armed]
        group_keys = [id(group) for group in self.groups if id(group) not in armed]
        for key in leader_keys:
            armed[key] = [None, 0]
        for key in group_keys:
            armed[key] = [None, {}]
        try:
            output = self.plain_forward(*args, **kwargs)
            for leader in self.leaders:
                if id(leader) in leader_keys and armed[id(leader)][1]:
                    raise RuntimeError(
                        f"{_describe(self.module)} declares that {_describe(leader.module)} is followed by "
                        f"{[_describe(f) for f in leader.followers]}, but its forward did not apply them to that output; "
                        f"fix {type(self.module).__name__}._inference_fusions (or register_fusions)."
                    )
            for group in self.groups:
                if id(group) in group_keys and armed[id(group)][1]:
                    group.give_up("a linear declared in _inference_shared_input was not called")
            return output
        finally:
            for key in leader_keys + group_keys:
                del armed[key]


class _Root(_ModuleState):
    """The bf16-optimised model itself: runs the fast path under CPU autocast, returns float32.

    Inside, GEMM outputs stay bfloat16 and ``torch.autocast`` casts the inputs of the remaining
    matmul-like ops (attention, ``bmm``) to one dtype; adds with the float32 residual stream promote
    back to float32, so norms and residuals stay float32. Floating outputs are cast to float32.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.inner_forward = module.__dict__.get("forward", type(module).forward.__get__(module))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.module.training or torch.is_grad_enabled() or getattr(_local, "low_precision", False):
            return self.inner_forward(*args, **kwargs)
        _local.low_precision = True
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                output = self.inner_forward(*args, **kwargs)
        finally:
            _local.low_precision = False
        return _to_float32(output)


def _to_float32(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype == torch.bfloat16 else value
    if isinstance(value, dict):  # ModelOutput included: set in place, keeping its class
        for k, v in list(value.items()):
            value[k] = _to_float32(v)
        return value
    if isinstance(value, tuple):
        return type(value)(_to_float32(v) for v in value) if not hasattr(value, "_fields") else type(value)(*(_to_float32(v) for v in value))
    if isinstance(value, list):
        return [_to_float32(v) for v in value]
    return value


def _describe(module: nn.Module) -> str:
    return type(module).__name__


# --- the entry points ----------------------------------------------------------------------------------


def optimize_for_inference(model: nn.Module, dtype: torch.dtype | None = None, backend: str = "auto") -> nn.Module:
    """Make ``model``'s eval, no-grad forward passes fast on CPU; returns ``model`` (changed in place).

    Args:
        model: any ``nn.Module``; declared fusions (``_inference_fusions``) are used where present.
        dtype: ``None``/``torch.float32`` (results within ~1e-5 of the plain model) or
            ``torch.bfloat16`` (bf16 GEMMs, float32 elsewhere; needs AVX512-BF16 or AMX, else a
            warning and float32).
        backend: ``"auto"`` (measure once per process which fp32 GEMM is faster), ``"onednn"`` or
            ``"default"`` (torch's GEMM for fp32 linears; convolutions still prepacked).

    Calling it again with the same arguments does nothing; with other arguments it re-plans.
    :func:`restore` undoes it. Idempotent, and invisible to ``state_dict()``, ``train()`` and
    autograd: see the module docstring.
    """
    dtype = torch.float32 if dtype is None else dtype
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"optimize_for_inference supports dtype=torch.float32 or torch.bfloat16, got {dtype}.")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if dtype == torch.bfloat16 and not bf16_supported():
        warnings.warn("This CPU has no native bfloat16 GEMM (AVX512-BF16 or AMX); optimize_for_inference keeps float32.", stacklevel=2)
        dtype = torch.float32
    plan = (dtype, backend)
    current = model.__dict__.get(_PLAN)
    if current == plan:
        return model
    if current is not None:
        restore(model)
    if not torch.backends.mkldnn.is_available():
        return model
    has_linear = any(type(m) is nn.Linear for m in model.modules())
    if dtype == torch.bfloat16:
        linear_backend = "onednn"
    else:
        linear_backend = gemm_calibration().backend if backend == "auto" and has_linear else backend
    _register_core_layers()

    leaders: dict[int, _Leader] = {}

    def leader_of(module: nn.Module) -> _Leader | None:
        if id(module) in leaders:
            return leaders[id(module)]
        if type(module) is nn.Linear and linear_backend == "onednn":
            leader: _Leader = _LinearLeader(module, dtype)
        elif (dims := _conv_kind(module)) is not None and (dims == 2 or dtype == torch.bfloat16 or backend == "onednn" or module.groups > 1):
            # fp32 Conv1d stays on torch's path unless asked or grouped: run as a height-1 Conv2d, a
            # plain one was slower (Wav2Vec2-base's feature encoder: 1177 vs 1083 ms), a grouped one
            # much faster (Wav2Vec2-base's positional conv, 16 groups, kernel 128: 24 vs 62 ms).
            leader = _ConvLeader(module, dtype, dims)
        else:
            return None
        leaders[id(module)] = leader
        return leader

    for module in model.modules():
        leader_of(module)
    followers: dict[int, _Follower] = {}
    scopes: list[_Scope] = []
    grouped: set[int] = set()
    for scope_module in model.modules():
        chains = _declared(scope_module, "_inference_fusions", _REGISTERED_FUSIONS) or _sequential_fusions(scope_module)
        fused = []
        for leader_name, *follower_names in chains:
            leader = leader_of(scope_module.get_submodule(leader_name))
            if leader is None or leader.followers:  # not packable here, or already fused elsewhere
                continue
            for name in follower_names:
                follower = scope_module.get_submodule(name) if isinstance(getattr(scope_module, name, None), nn.Module) else None
                if follower is None or id(follower) in followers or leader.post_op[0] != "none":
                    break
                norm = _foldable_norm(follower) if isinstance(leader, _ConvLeader) else None
                post_op = _activation_post_op(follower)
                if norm is not None and not leader.followers:
                    leader.norm = norm
                elif post_op is not None:
                    leader.post_op = post_op
                else:
                    break
                leader.followers.append(follower)
                followers[id(follower)] = _Follower(follower, leader, len(leader.followers))
            if leader.followers:
                fused.append(leader)
        groups = [group for names in _declared(scope_module, "_inference_shared_input", _REGISTERED_SHARED_INPUTS) if (group := _group_of(scope_module, names, leader_of, grouped))]
        if fused or groups:
            scopes.append(_Scope(scope_module, fused, groups))

    for state in [*leaders.values(), *followers.values(), *scopes]:
        _install(state.module, state)
    if dtype == torch.bfloat16:
        _install(model, _Root(model))
    model.__dict__[_PLAN] = plan  # for idempotence
    logger.info("optimize_for_inference: %d linears/convs prepacked (%s), %d fused followers", len(leaders), linear_backend, len(followers))
    return model


def _group_of(scope_module: nn.Module, names: tuple[str, ...], leader_of: Any, grouped: set[int]) -> _Group | None:
    """The shared-input group of ``names`` under ``scope_module``, or None where it cannot be formed
    (a linear not packed here, already fused or grouped, or of another input size)."""
    members = []
    for name in names:
        module = getattr(scope_module, name, None)
        leader = leader_of(module) if isinstance(module, nn.Module) else None
        if not isinstance(leader, _LinearLeader) or leader.followers or id(leader) in grouped:
            return None
        members.append(leader)
    if len(members) < 2 or len({m.module.in_features for m in members}) != 1:
        return None
    group = _Group(scope_module, members)
    for member in members:
        member.group = group
        grouped.add(id(member))
    return group


def _install(module: nn.Module, state: _ModuleState) -> None:
    module.__dict__["forward"] = state.forward  # an instance attribute: nn.Module.__call__ finds it first
    module.__dict__.setdefault(_STATE, []).append(state)


def is_optimized(model: nn.Module) -> bool:
    """True when :func:`optimize_for_inference` was applied to ``model`` (and not undone)."""
    return _PLAN in model.__dict__


def restore(model: nn.Module) -> nn.Module:
    """Undo :func:`optimize_for_inference`: every module gets its class's ``forward`` back."""
    for module in model.modules():
        if _STATE in module.__dict__:
            del module.__dict__[_STATE]
            module.__dict__.pop("forward", None)
    model.__dict__.pop(_PLAN, None)
    return model
