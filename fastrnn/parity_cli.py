"""`fastrnn parity`: hold a recurrent module against the float64 reference, tensor by tensor.

The same check gates every timed configuration of the benchmark harness (benchmarks/parity.py), so
a number is only reported for code that computes the right thing. It compares the outputs, the final
states and the gradients of the input, of every initial state and of every weight and bias, with
random upstream gradients on the outputs and on the final states, using the tolerance table of
fastrnn.testing for the dtype under test.

    fastrnn parity --mode lstm --backend reference --T 20 --B 3 --I 8 --H 16 --layers 2
"""

import contextlib
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fastrnn import functional
from fastrnn.testing import TOLERANCES, compare

# CLI mode name -> (recurrent_stack mode, torch.nn class name, nonlinearity)
MODES = {
    "lstm": ("LSTM", "LSTM", None),
    "gru": ("GRU", "GRU", None),
    "rnn": ("RNN_TANH", "RNN", "tanh"),
    "rnn_relu": ("RNN_RELU", "RNN", "relu"),
}
DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class ParityConfig:
    """One configuration to check. lengths: per-sequence valid lengths (packed input) or None.
    proj_size: LSTM projection size P (0: none), as torch.nn.LSTM.
    """

    mode: str = "lstm"
    T: int = 16
    B: int = 4
    I: int = 8  # noqa: E741  (I is the input size in every dimension legend of the project)
    H: int = 16
    layers: int = 1
    bidirectional: bool = False
    lengths: tuple | None = None
    dtype: str = "float32"
    device: str = "cpu"
    seed: int = 0
    proj_size: int = 0

    @property
    def directions(self):
        return 2 if self.bidirectional else 1

    @property
    def h_out(self):
        """Width of h and of the output per direction: P with a projection, else H."""
        return self.proj_size or self.H

    def module_kwargs(self):
        """Constructor keywords beyond the sizes: nonlinearity (RNN), proj_size (when set)."""
        nonlinearity = MODES[self.mode][2]
        kwargs = {} if nonlinearity is None else {"nonlinearity": nonlinearity}
        if self.proj_size:
            kwargs["proj_size"] = self.proj_size
        return kwargs

    def torch_module(self, dtype, device):
        """A torch.nn recurrent module of this configuration (weights from the current seed)."""
        return getattr(torch.nn, MODES[self.mode][1])(self.I, self.H, self.layers,
                                                      bidirectional=self.bidirectional,
                                                      dtype=dtype, device=device,
                                                      **self.module_kwargs())


@contextlib.contextmanager
def tf32_disabled():
    """Parity runs in IEEE fp32: TF32 would fail the fp32 tolerance by design, not by bug."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def reference_weights(config):
    """Canonical float64 weights in torch.nn naming (weight_ih_l0, ..., bias_hh_l1_reverse)."""
    torch.manual_seed(config.seed)
    module = config.torch_module(torch.float64, config.device)
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _weight_tuples(config, weights):
    """torch.nn names -> the (w_ih, w_hh, b_ih, b_hh, w_hr) tuples of fastrnn.functional."""
    tuples = []
    for layer in range(config.layers):
        for suffix in ("", "_reverse")[: config.directions]:
            key = f"l{layer}{suffix}"
            tuples.append((weights[f"weight_ih_{key}"], weights[f"weight_hh_{key}"],
                           weights.get(f"bias_ih_{key}"), weights.get(f"bias_hh_{key}"),
                           weights.get(f"weight_hr_{key}")))
    return tuples


def _inputs(config):
    """float64 input (T, B, I), initial states and upstream gradients, all seeded."""
    generator = torch.Generator().manual_seed(config.seed + 1)
    randn = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64).to(
        config.device)
    x = randn(config.T, config.B, config.I)
    # h0 is (L*D, B, H_out); an LSTM's c0 is (L*D, B, H) even with a projection.
    widths = [config.h_out, config.H] if config.mode == "lstm" else [config.H]
    states = [0.5 * randn(config.layers * config.directions, config.B, width) for width in widths]
    upstream = [randn(config.T, config.B, config.directions * config.h_out)]
    upstream += [randn(*s.shape) for s in states]
    return x, states, upstream


def _state_names(config):
    return ["h", "c"] if config.mode == "lstm" else ["h"]


def _gradients(outputs, leaves, upstream):
    return torch.autograd.grad(outputs, leaves, upstream, allow_unused=True)


def _run_reference(config, weights, x, states, upstream):
    """Outputs and gradients of the float64 reference, keyed like the run under test."""
    leaves = {name: w.clone().requires_grad_() for name, w in weights.items()}
    x = x.clone().requires_grad_()
    states = [s.clone().requires_grad_() for s in states]
    lengths = None if config.lengths is None else torch.tensor(config.lengths)
    output, finals = functional.recurrent_stack(
        MODES[config.mode][0], x, states, _weight_tuples(config, leaves),
        bidirectional=config.bidirectional, lengths=lengths, backend="reference")
    tensors = [output, *finals]
    grads = _gradients(tensors, [x, *states, *leaves.values()], upstream)
    return tensors, grads


def _run_module(config, module, params, x, states, upstream):
    """Outputs and gradients of a torch-API module: module(input, hx) -> (output, h_n or (h, c))."""
    dtype = DTYPES[config.dtype]
    x = x.to(dtype).requires_grad_()
    states = [s.to(dtype).requires_grad_() for s in states]
    hx = tuple(states) if config.mode == "lstm" else states[0]
    lengths = None if config.lengths is None else torch.tensor(config.lengths)
    run_input = x if lengths is None else pack_padded_sequence(x, lengths, enforce_sorted=False)
    output, finals = module(run_input, hx)
    if lengths is not None:
        output = pad_packed_sequence(output, total_length=config.T)[0]
    finals = list(finals) if config.mode == "lstm" else [finals]
    tensors = [output, *finals]
    grads = _gradients(tensors, [x, *states, *params.values()],
                       [u.to(dtype) for u in upstream])
    return tensors, grads


def check_module(config, module, params=None):
    """Compare `module` (torch.nn API, time-major) with the float64 reference.

    Args:
        config: ParityConfig; config.dtype is the dtype the module runs in.
        module: callable module(input or PackedSequence, hx) -> (output, finals), torch.nn style.
        params: canonical torch.nn name -> the module's Parameter holding that weight (default:
            module.named_parameters()). The reference weights are copied into them.
    Returns:
        list of fastrnn.testing.Comparison: output, h_n[, c_n], grad_input, grad_h0[, grad_c0],
        grad_<weight name> for every weight.
    """
    params = dict(module.named_parameters()) if params is None else params
    weights = reference_weights(config)
    if set(params) != set(weights):
        raise ValueError(f"parameters {sorted(params)} do not match {sorted(weights)}")
    params = {name: params[name] for name in weights}
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name])
    x, states, upstream = _inputs(config)
    with tf32_disabled():
        expected, expected_grads = _run_reference(config, weights, x, states, upstream)
        actual, actual_grads = _run_module(config, module, params, x, states, upstream)
    state_names = _state_names(config)
    names = ["output", *[f"{s}_n" for s in state_names]]
    grad_names = ["grad_input", *[f"grad_{s}0" for s in state_names]]
    grad_names += [f"grad_{name}" for name in params]
    dtype = DTYPES[config.dtype]
    comparisons = []
    for name, a, e in zip(names + grad_names, actual + list(actual_grads),
                          expected + list(expected_grads)):
        if a is None or e is None:
            a = torch.zeros(()) if a is None else a
            e = torch.zeros(()) if e is None else e
        comparisons.append(compare(a, e, name, dtype))
    return comparisons


def fastrnn_module(config, backend):
    """The drop-in fastrnn module for `config` on `backend`, in the dtype and device under test."""
    import fastrnn

    return getattr(fastrnn, MODES[config.mode][1])(config.I, config.H, config.layers,
                                                   bidirectional=config.bidirectional,
                                                   dtype=DTYPES[config.dtype],
                                                   device=config.device, backend=backend,
                                                   **config.module_kwargs())


def imdb_like_lengths(count, max_length, seed=0):
    """`count` lengths from a lognormal fitted to IMDB review lengths in tokens.

    IMDB reviews have a median of ~174 tokens and a mean of ~230 with a long tail; lognormal(5.16,
    0.75) has exactly that median and mean. Clipped to [1, max_length]; the longest sequence is
    set to max_length so the padded length is really used.
    """
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.empty(count, dtype=torch.float64).log_normal_(5.16, 0.75, generator=generator)
    lengths = lengths.round().clamp(1, max_length).to(torch.int64)
    lengths[int(lengths.argmax())] = max_length
    return tuple(int(n) for n in lengths)


def add_arguments(parser):
    parser.add_argument("--mode", choices=sorted(MODES), default="lstm")
    parser.add_argument("--backend", default="reference",
                        help="fastrnn backend under test: reference, cpu, triton, torch (cudnn), auto")
    parser.add_argument("--T", type=int, default=16, help="sequence length")
    parser.add_argument("--B", type=int, default=4, help="batch size")
    parser.add_argument("--I", type=int, default=8, help="input size")
    parser.add_argument("--H", type=int, default=16, help="hidden size")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--proj-size", type=int, default=0, help="LSTM projection size (0: none)")
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--packed", action="store_true",
                        help="packed input with IMDB-like variable lengths (max = T)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)


def run(args):
    from fastrnn.backends import BackendUnavailableError

    lengths = imdb_like_lengths(args.B, args.T, args.seed) if args.packed else None
    config = ParityConfig(mode=args.mode, T=args.T, B=args.B, I=args.I, H=args.H,
                          layers=args.layers, bidirectional=args.bidirectional, lengths=lengths,
                          dtype=args.dtype, device=args.device, seed=args.seed,
                          proj_size=args.proj_size)
    tolerance = TOLERANCES[DTYPES[args.dtype]]
    print(f"parity of backend {args.backend!r} vs the float64 reference: {config}")
    print(f"tolerance for {args.dtype}: rel_rms <= {tolerance.rel_rms:.0e}, "
          f"max_err <= {tolerance.max_err:.0e}")
    try:
        comparisons = check_module(config, fastrnn_module(config, args.backend))
    except BackendUnavailableError as error:
        print(f"unavailable: {error}")
        return 2
    for comparison in comparisons:
        print(f"  {comparison}")
    failed = [c.name for c in comparisons if not c.ok]
    print("FAIL: " + ", ".join(failed) if failed else f"ok: {len(comparisons)} tensors")
    return 1 if failed else 0
