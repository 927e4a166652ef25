"""Weight gradients on the CPU path: products over all steps after the backward loop.

Dimensions: T time, B batch, N gate width, K input width of a product.
"""

import torch


def weight_grad(pairs, out=None):
    """sum_t dgates_t^T inputs_t over [(dgates (T', B, N), inputs (T', B, K))] -> (N, K): one GEMM
    per part after the loop (layout.pairs splits the steps by where their previous state is),
    accumulated in place into `out` (N, K) when given, so no part needs a buffer of its own."""
    for index, (dgates, inputs) in enumerate(pairs):
        a, b = dgates.reshape(-1, dgates.shape[-1]).t(), inputs.reshape(-1, inputs.shape[-1])
        if index == 0:
            out = torch.mm(a, b, out=out) if out is not None else a.mm(b)
        else:
            out.addmm_(a, b)
    return out
