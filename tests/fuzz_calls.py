"""Hypothesis strategies for the differential fuzzer: plain-data descriptions of one call.

A call is a dict of plain values (picklable, printable, replayable in a worker process by
fuzz_runner.run_call): the class and its constructor arguments, the input, the state, the
backend, and a list of mutations that make it malformed or unusual. A call without mutations is
well-formed; each mutation changes one thing (a size, a dtype, a type, a layout, a NaN) so that a
mismatch with torch.nn points at one cause.

Keys: kind ('LSTM' | 'GRU' | 'RNN' | 'LSTMCell' | 'GRUCell' | 'RNNCell'), backend, dtype
('float64' | 'float32'), ctor (constructor keyword arguments), T, B, style ('batched' |
'unbatched' | 'packed'), lengths (packed only), enforce_sorted, hx ('none' | 'given'),
input_grad, hx_grad (requires_grad of the leaves), mutations (list of (name, argument)), seed.
"""

import math

from hypothesis import strategies as st

LAYER_KINDS = ("LSTM", "GRU", "RNN")
CELL_KINDS = ("LSTMCell", "GRUCell", "RNNCell")
SPECIAL_VALUES = (math.nan, math.inf, -math.inf)

# Mutations of every call; a name -> strategy of its argument.
COMMON_MUTATIONS = {
    "input_ndim": st.sampled_from([-1, 1]),  # one dimension fewer or more
    "input_features": st.sampled_from([-1, 1]),  # last dimension off by one
    "input_dtype": st.sampled_from(["float64", "float32", "float16", "int64", "bool"]),
    "input_layout": st.sampled_from(["transposed", "expanded", "overlapping"]),
    "input_special": st.tuples(st.integers(0, 10_000), st.sampled_from(SPECIAL_VALUES)),
    "input_type": st.sampled_from(["list", "numpy", "none"]),
    "hx_shape": st.tuples(st.integers(0, 2), st.sampled_from([-1, 1]), st.integers(0, 1)),
    "hx_ndim": st.tuples(st.sampled_from([-1, 1]), st.integers(0, 1)),
    "hx_type": st.sampled_from(["bare", "stacked", "triple", "single", "list", "nested", "int"]),
    "hx_dtype": st.tuples(st.sampled_from(["float64", "float32", "float16", "int64"]),
                          st.integers(0, 1)),
    "hx_layout": st.tuples(st.sampled_from(["transposed", "expanded"]), st.integers(0, 1)),
    "hx_special": st.tuples(st.integers(0, 10_000), st.sampled_from(SPECIAL_VALUES),
                            st.integers(0, 1)),
    "weight_special": st.tuples(st.integers(0, 100), st.integers(0, 10_000),
                                st.sampled_from(SPECIAL_VALUES)),
    "weight_dtype": st.integers(0, 100),  # one parameter in the other float dtype
    "extra_argument": st.just(None),
    "batch_empty": st.just(None),
}
# Mutations of layer calls only.
LAYER_MUTATIONS = {
    "time_empty": st.just(None),
    "weight_deleted": st.integers(0, 100),
}
# Mutations of PackedSequence calls only.
PACKED_MUTATIONS = {
    "batch_sizes_negative": st.integers(0, 10),
    "batch_sizes_increasing": st.just(None),
    "batch_sizes_zero": st.integers(0, 10),
    "batch_sizes_sum": st.sampled_from([-1, 1]),
    "batch_sizes_dtype": st.sampled_from(["int32", "float32"]),
    "batch_sizes_ndim": st.just(None),
    "sorted_indices": st.sampled_from(["short", "out_of_range", "duplicate", "unsorted_none"]),
    "packed_data_ndim": st.just(None),
}


@st.composite
def _mutations(draw, table):
    """Zero, one or two mutations (one most often: a mismatch then has one cause)."""
    count = draw(st.sampled_from([0, 1, 1, 1, 2]))
    names = draw(st.lists(st.sampled_from(sorted(table)), min_size=count, max_size=count,
                          unique=True))
    return [(name, draw(table[name])) for name in names]


def _with_mutations(draw, call, table):
    call["mutations"] = draw(_mutations(table))
    if any(name.startswith("hx_") for name, _ in call["mutations"]):
        call["hx"] = "given"  # a state mutation needs a state
    return call


@st.composite
def layer_calls(draw, kind, backend):
    """A call of LSTM, GRU or RNN (`kind`) on `backend`."""
    dtype = "float32" if backend == "triton" else draw(st.sampled_from(["float64", "float32"]))
    hidden = draw(st.integers(1, 4))
    ctor = {
        "input_size": draw(st.integers(1, 4)),
        "hidden_size": hidden,
        "num_layers": draw(st.integers(1, 2)),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bidirectional": draw(st.booleans()),
    }
    if kind == "LSTM" and hidden > 1 and draw(st.booleans()):
        ctor["proj_size"] = draw(st.integers(1, hidden - 1))
    if kind == "RNN":
        ctor["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    steps, batch = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    style = draw(st.sampled_from(["batched", "batched", "unbatched", "packed"]))
    call = {"kind": kind, "backend": backend, "dtype": dtype, "ctor": ctor, "T": steps, "B": batch,
            "style": style, "hx": draw(st.sampled_from(["none", "given"])),
            "input_grad": draw(st.booleans()), "hx_grad": draw(st.booleans()),
            "seed": draw(st.integers(0, 2**31 - 1))}
    table = dict(COMMON_MUTATIONS, **LAYER_MUTATIONS)
    if style == "packed":
        call["lengths"] = draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
        call["enforce_sorted"] = draw(st.booleans())
        if call["enforce_sorted"]:
            call["lengths"].sort(reverse=True)
        table.update(PACKED_MUTATIONS)
    return _with_mutations(draw, call, table)


@st.composite
def cell_calls(draw, kind, backend):
    """A call of LSTMCell, GRUCell or RNNCell (`kind`) on `backend`."""
    dtype = "float32" if backend == "triton" else draw(st.sampled_from(["float64", "float32"]))
    ctor = {"input_size": draw(st.integers(1, 4)), "hidden_size": draw(st.integers(1, 4)),
            "bias": draw(st.booleans())}
    if kind == "RNNCell":
        ctor["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    call = {"kind": kind, "backend": backend, "dtype": dtype, "ctor": ctor, "T": 1,
            "B": draw(st.integers(1, 3)),
            "style": draw(st.sampled_from(["batched", "batched", "unbatched"])),
            "hx": draw(st.sampled_from(["none", "given"])),
            "input_grad": draw(st.booleans()), "hx_grad": draw(st.booleans()),
            "seed": draw(st.integers(0, 2**31 - 1))}
    return _with_mutations(draw, call, COMMON_MUTATIONS)


def calls(kind, backend):
    """The strategy of calls of class `kind` on `backend`."""
    return (cell_calls if kind in CELL_KINDS else layer_calls)(kind, backend)


def describe(call):
    """A one-line summary of a call for failure messages and the census."""
    mutations = ", ".join(f"{name}={arg!r}" for name, arg in call["mutations"]) or "well-formed"
    return (f"{call['kind']}({call['ctor']}) on {call['backend']} {call['dtype']} "
            f"{call['style']} T={call['T']} B={call['B']} hx={call['hx']} "
            f"lengths={call.get('lengths')} seed={call['seed']}: {mutations}")
