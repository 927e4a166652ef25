"""Weight gradients on the CPU path: products over all steps after the backward loop.

Dimensions: T time, B batch, N gate width, K input width of a product.
"""


def weight_grad(pairs):
    """sum_t dgates_t^T inputs_t over [(dgates (T', B, N), inputs (T', B, K))] -> (N, K): one GEMM
    per part after the loop (layout.pairs splits the steps by where their previous state is)."""
    total = None
    for dgates, inputs in pairs:
        part = dgates.reshape(-1, dgates.shape[-1]).t().mm(inputs.reshape(-1, inputs.shape[-1]))
        total = part if total is None else total.add_(part)
    return total
