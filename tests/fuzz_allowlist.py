"""Deliberate differences from torch.nn that the fuzzer accepts, each with its reason.

Where torch.nn crashes, computes with stale state or returns a result from malformed input,
fastrnn raises a clear error instead. Everything else must match (fuzz_runner). An entry is
(name, predicate(call, verdict) -> bool, reason); `allowed` returns the first matching name.
"""

PACKED_MALFORMATIONS = {"batch_sizes_negative", "batch_sizes_increasing", "batch_sizes_zero",
                        "batch_sizes_sum", "batch_sizes_dtype", "batch_sizes_ndim",
                        "sorted_indices"}


def _mutations(call):
    return {name: argument for name, argument in call["mutations"]}


def _we_raised(verdict, *types):
    return verdict.our_error is not None and verdict.our_error != ("crash",) and (
        not types or verdict.our_error[1] in types)


def _deleted_weight(call, verdict):
    return "weight_deleted" in _mutations(call) and _we_raised(verdict, "AttributeError")


def _malformed_packed(call, verdict):
    mutations = _mutations(call)
    malformed = PACKED_MALFORMATIONS & set(mutations) and mutations.get(
        "sorted_indices") != "unsorted_none"
    return bool(malformed) and _we_raised(verdict, "RuntimeError", "TypeError") and (
        "PackedSequence" in verdict.our_error[2] or verdict.category != "type")


def _torch_crashes(call, verdict):
    return verdict.category == "torch-crash" and _we_raised(verdict)


def _lstm_state_pair(call, verdict):
    # torch.nn re-tuples hx itself for unbatched and for unsorted packed input and so drops a
    # third tensor (or splits a stacked tensor) without a word; fastrnn refuses it everywhere.
    kind = _mutations(call).get("hx_type")
    return (call["kind"] in ("LSTM", "LSTMCell") and kind in ("triple", "stacked", "bare")
            and verdict.category == "decision" and verdict.torch_error is None
            and _we_raised(verdict, "RuntimeError", "TypeError"))


def _mixed_dtype(call, verdict):
    return ({"hx_dtype", "weight_dtype"} & set(_mutations(call))
            and verdict.category == "decision"
            and verdict.torch_error is None and _we_raised(verdict, "RuntimeError")
            and "same dtype" in verdict.our_error[2])


def _unbatched_cell_batched_state(call, verdict):
    return (call["kind"].endswith("Cell") and _we_raised(verdict, "RuntimeError")
            and "-D for 1-D input" in verdict.our_error[2]
            and verdict.category in ("decision", "message", "torch-crash"))


def _lstm_packed_unchecked(call, verdict):
    mutations = _mutations(call)
    return (call["kind"] == "LSTM" and call["style"] == "packed"
            and {"hx_shape", "hx_ndim", "hx_type", "input_dtype", "input_features", "weight_dtype"}
            & set(mutations)
            and _we_raised(verdict, "RuntimeError", "TypeError", "ValueError")
            and verdict.category in ("message", "type", "decision", "torch-crash"))


def _packed_state_permuted(call, verdict):
    mutations = _mutations(call)
    return (call["kind"] in ("GRU", "RNN") and call["style"] == "packed"
            and {"hx_shape", "hx_ndim"} & set(mutations)
            and _we_raised(verdict, "RuntimeError")
            and verdict.our_error[2].startswith("Expected hidden size")
            and verdict.category in ("message", "type", "decision", "torch-crash"))


ALLOWLIST = [
    ("deleted-weight", _deleted_weight,
     "torch.nn keeps computing with a parameter deleted from the module (its cached "
     "_flat_weights); fastrnn reads parameters by name at every call and raises AttributeError "
     "naming the missing one."),
    ("malformed-packed-sequence", _malformed_packed,
     "A PackedSequence whose batch_sizes or indices pack_padded_sequence cannot produce: torch.nn "
     "crashes (negative or zero batch sizes free memory it does not own), returns a result from "
     "inconsistent sizes or duplicate indices, or raises whatever op trips first (TypeError from "
     "zeros(), IndexError); fastrnn checks the PackedSequence first and raises RuntimeError naming "
     "the field."),
    ("torch-crashes", _torch_crashes,
     "torch.nn kills the process (abort, invalid free); fastrnn raises an error."),
    ("lstm-state-pair", _lstm_state_pair,
     "torch.nn drops a third state tensor, or splits a stacked (2, L*D, H) tensor, for unbatched "
     "and unsorted packed input, where it raises for batched input; fastrnn raises for all."),
    ("mixed-dtype", _mixed_dtype,
     "torch.nn's CPU kernels promote a state or a bias of another dtype (LSTMCell with a float16 "
     "c, a float32 bias in a float64 LSTM) where its other paths and cuDNN raise; fastrnn raises "
     "everywhere, with the message torch gives where it raises."),
    ("unbatched-cell-batched-state", _unbatched_cell_batched_state,
     "A 1-D input with a 2-D state passes torch.nn's cell checks when the sizes happen to line up "
     "and broadcasts into a batch nobody asked for (or fails in a broadcast, or crashes); fastrnn "
     "refuses it: 'hidden0 must be 1-D for 1-D input'."),
    ("lstm-packed-unchecked", _lstm_packed_unchecked,
     "torch.nn's LSTM skips its argument checks for PackedSequence input, so a wrong h0/c0 shape "
     "or container, or data or a weight of the wrong dtype or feature size, reaches ATen ('Odd number of "
     "params or hiddens', 'got an incorrect number of RNN parameters', an IndexError from "
     "unpacking a bare tensor as (h, c), a matmul's dtype message), runs, or crashes; fastrnn "
     "checks packed input as it checks dense input and gives those errors."),
    ("packed-state-permuted", _packed_state_permuted,
     "torch.nn's GRU and RNN permute hx into sorted order before checking it, so a wrong hx is "
     "reported with the permuted shape (or as an index error from the permutation), and one with "
     "a larger batch is silently cut to the packed batch; fastrnn "
     "checks the hx it was given: 'Expected hidden size (1, 2, 6), got [1, 3, 6]'."),
]


def allowed(call, verdict):
    """The name of the allowlist entry covering this verdict, or None."""
    for name, predicate, _ in ALLOWLIST:
        if predicate(call, verdict):
            return name
    return None
