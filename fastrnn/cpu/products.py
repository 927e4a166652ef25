"""The recurrent product of a step, x_t W^T for a weight fixed over the whole loop.

Dimensions: n rows of a step (the batch, or a variable-lengths segment's batch prefix), K the
product's input width, N its output width (the LSTM's forward: K = H_out, N = 4H).

An ordinary GEMM call re-packs its weight into the BLAS's blocked format on every call. With a few
rows per step that packing is a large share of the call once the weight outgrows the core's L2
cache, and a time loop pays it T times for the same weight. MKL can pack a weight once
(cblas_sgemm_pack) and then multiply any number of inputs of the row count it was packed for;
torch reaches it through torch.ops.mkl (the ops inductor uses for frozen linear layers), float32
only and only in builds with MKL. Where it is missing, or the data is another dtype, the product
is the plain addmm.

When it pays (torch.utils.benchmark on a 2-core AVX-512 Xeon, one thread, torch 2.13): for the
LSTM's forward shape (N = 4K) at K >= 256 and n >= 32 the packed product plus the add of gx_t
takes 0.65-0.84x the addmm's time (H=256 B=64: 380 against 461 us; H=512 B=32: 627 against
960 us); below 1 MiB of weight, with fewer rows, and for the GRU's (N = 3K) and the backward's
(K = 4N) shapes it is a wash or slower (the separate add costs what the packing saved). Packing
costs about one product (130 us at H=256, 500 us at 512), so a segment needs a few steps to
repay it.
"""

import functools

import torch
import torch.nn.functional as F

# The rule above, as thresholds (tests lower them to run the packed path at small sizes).
MIN_ROWS = 32
MIN_WEIGHT_ELEMENTS = 1 << 18  # 1 MiB of float32
MIN_STEPS = 8


def _mkl_ops():
    """(reorder, linear) from torch.ops.mkl, or None in a build without them."""
    try:
        return torch.ops.mkl._mkl_reorder_linear_weight, torch.ops.mkl._mkl_linear
    except (AttributeError, RuntimeError):
        return None


_MKL = _mkl_ops() if torch.backends.mkl.is_available() else None


class StepWeight:
    """A recurrent weight and what its step products need.

    Args:
        weight: (N, K), the product of a step is x @ weight^T (x (n, K) -> (n, N)).
    Attributes:
        weight_t: (K, N) contiguous, the addmm's operand.
    """

    def __init__(self, weight):
        self.weight = weight.contiguous()
        # The one packed weight alive: the segments' row counts only shrink, so a packing is never
        # needed again once the next segment starts (and each is several times the weight).
        self._rows, self._packed = None, None

    @functools.cached_property
    def weight_t(self):
        # Made on first use: a call whose every segment runs the packed product never needs it, and
        # the transposing copy costs what several steps do (3 ms at H=512). Contiguous, not a view:
        # MKL's small products with a transposed operand took 1.2-1.8x as long (B=8 H=64: 11 vs 6 us).
        return self.weight.t().contiguous()

    def prepare(self, rows, steps):
        """Pack the weight for the next `steps` steps of `rows` rows when they repay the packing
        (else they run the plain addmm)."""
        n_out, n_in = self.weight.shape
        if (_MKL is not None and self.weight.dtype == torch.float32 and rows >= MIN_ROWS
                and steps >= MIN_STEPS and n_out * n_in >= MIN_WEIGHT_ELEMENTS
                and n_out >= 4 * n_in):
            self._rows, self._packed = rows, _MKL[0](self.weight, rows)
        else:
            self._rows, self._packed = None, None

    def mm(self, x, out):
        """x @ weight^T, x (n, K) -> (n, N): into `out` (n, N), or a new tensor from the packed
        product."""
        if self._rows != x.shape[0]:
            return torch.mm(x, self.weight_t, out=out)
        return _MKL[1](x, self._packed, self.weight, None, self._rows)

    def addmm(self, input, x, out):
        """out = input + x @ weight^T; input and out (n, N), x (n, K)."""
        if self._rows != x.shape[0]:
            return torch.addmm(input, x, self.weight_t, out=out)
        return torch.add(input, _MKL[1](x, self._packed, self.weight, None, self._rows), out=out)

    def addmm_(self, acc, x):
        """acc += x @ weight^T in place; acc (n, N), x (n, K)."""
        if self._rows != x.shape[0]:
            return acc.addmm_(x, self.weight_t)
        return acc.add_(_MKL[1](x, self._packed, self.weight, None, self._rows))


def input_projection(x, weight, bias):
    """gx = x @ weight^T + bias (F.linear's value, rounded in another order): x (..., I), weight
    (N, I), bias (N,) or None -> (..., N).

    The product first, then the bias added in place: MKL's addmm with a bias (beta = 1, the bias
    broadcast into the output before the product) took 4.1 ms against 2.5 for the product alone
    at T=100 B=64 H=64 (an LSTM's (6400, 64) x (64, 256)), 8.6 against 6.7 at H=128, and the add
    after it 0.5 and 1.5 ms (torch.utils.benchmark, one thread, a 2-core AVX-512 Xeon).
    """
    if bias is None:
        return F.linear(x, weight)
    from fastrnn.ops import plain_eager_cpu

    product = torch.matmul(x, weight.t())
    # In place only in plain eager mode: under a transform the bias may carry a batch dimension
    # (vmap over the bias) that the product lacks, or a tangent; ATen's linear has the same guard.
    if plain_eager_cpu((x, weight, bias)):
        return product.add_(bias)
    return product + bias
