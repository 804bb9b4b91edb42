"""BatchNorm helpers shared by samplers and SAM."""

from __future__ import annotations

from contextlib import contextmanager

from torch import nn


@contextmanager
def frozen_running_stats(model: nn.Module, enabled: bool = True):
    """Forward passes still normalise with batch statistics but leave running mean/var as they are.

    Momentum 0 makes the update `running = running`; used for sampler passes that should not leak
    sample statistics into inference (sampler.freeze_bn_stats) and for SAM's second pass
    ([SADA] Algorithm 1 step 3).
    """
    if not enabled:
        yield
        return
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def independent_passes(model: nn.Module) -> bool:
    """Whether forwarding two batches together gives exactly what two separate forwards give: no
    BatchNorm (batch statistics couple the samples of a pass) and no stateful reparametrisation
    such as spectral norm (a power iteration per training forward). Then the JEM objective runs
    data, samples and the CE batch as one forward pass; otherwise concatenating them would change the model.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) or hasattr(m, "parametrizations") or m._forward_pre_hooks:
            return False
    return True
