"""The named grid of module and cell configurations the parity suite runs.

Every constructor option and input style appears at least once per mode: num_layers 1/2/3,
bias, batch_first, bidirectional, proj_size (LSTM), dropout in eval, T=1, B=1, odd sizes, I != H,
packed input (pack_padded_sequence and pack_sequence, enforce_sorted True and False), unbatched,
default and given hx (LSTM hx as a tuple and as a list).
"""

from helpers import Case

MODES = {"LSTM": ("LSTM", {}), "GRU": ("GRU", {}), "RNN_TANH": ("RNN", {}),
         "RNN_RELU": ("RNN", {"nonlinearity": "relu"})}

# (suffix, Case fields) shared by every mode.
_VARIANTS = [
    ("base", {}),
    ("hx", {"hx": "tuple"}),
    ("L2-hx", {"kwargs": {"num_layers": 2}, "hx": "tuple"}),
    ("L3-bidir-hx", {"kwargs": {"num_layers": 3, "bidirectional": True}, "hx": "tuple"}),
    ("nobias-hx", {"kwargs": {"bias": False}, "hx": "tuple"}),
    ("batch_first-hx", {"kwargs": {"batch_first": True}, "hx": "tuple"}),
    ("bidir-batch_first", {"kwargs": {"bidirectional": True, "batch_first": True}}),
    ("L2-dropout-eval", {"kwargs": {"num_layers": 2, "dropout": 0.5}, "training": False}),
    ("T1-hx", {"T": 1, "hx": "tuple"}),
    ("B1", {"B": 1}),
    ("odd-T7-B5-I3-H9", {"T": 7, "B": 5, "input_size": 3, "H": 9, "hx": "tuple"}),
    ("I_eq_H", {"input_size": 6}),
    ("packed-L2-bidir-hx", {"kwargs": {"num_layers": 2, "bidirectional": True},
                            "style": "packed", "hx": "tuple"}),
    ("packed_sorted", {"style": "packed_sorted"}),
    ("packed-batch_first-bidir", {"kwargs": {"batch_first": True, "bidirectional": True},
                                  "style": "packed"}),
    ("pack_sequence-hx", {"style": "pack_sequence", "hx": "tuple"}),
    ("pack_sequence_sorted-bidir", {"kwargs": {"bidirectional": True},
                                    "style": "pack_sequence_sorted"}),
    ("unbatched", {"style": "unbatched"}),
    ("unbatched-L2-bidir-hx", {"kwargs": {"num_layers": 2, "bidirectional": True},
                               "style": "unbatched", "hx": "tuple"}),
    ("unbatched-batch_first-hx", {"kwargs": {"batch_first": True}, "style": "unbatched",
                                  "hx": "tuple"}),
]

_LSTM_ONLY = [
    ("hx_list", {"hx": "list"}),
    ("proj", {"kwargs": {"proj_size": 3}}),
    ("proj-L2-bidir-hx", {"kwargs": {"num_layers": 2, "bidirectional": True, "proj_size": 4},
                          "hx": "tuple"}),
    ("proj-nobias-batch_first-hx_list", {"kwargs": {"proj_size": 2, "bias": False,
                                                    "batch_first": True}, "hx": "list"}),
    ("proj-packed-bidir-hx", {"kwargs": {"proj_size": 2, "bidirectional": True},
                              "style": "packed", "hx": "tuple"}),
    ("proj-unbatched-hx", {"kwargs": {"proj_size": 5}, "style": "unbatched", "hx": "tuple"}),
]

# The cases the Triton backend also runs in its cooperative and stepwise forms: one of each feature.
FORMS_SUBSET = {"base", "hx", "L2-hx", "bidir-batch_first", "nobias-hx", "T1-hx", "B1",
                 "packed-L2-bidir-hx", "unbatched", "hx_list", "proj-L2-bidir-hx",
                 "proj-packed-bidir-hx"}


def _case(mode, suffix, fields):
    kind, mode_kwargs = MODES[mode]
    fields = dict(fields)
    kwargs = {**mode_kwargs, **fields.pop("kwargs", {})}
    return Case(name=f"{mode}-{suffix}", kind=kind, kwargs=kwargs, **fields)


def module_cases():
    cases = [_case(mode, suffix, fields) for mode in MODES for suffix, fields in _VARIANTS]
    return cases + [_case("LSTM", suffix, fields) for suffix, fields in _LSTM_ONLY]


_CELL_KINDS = {"LSTMCell": ("LSTMCell", {}), "GRUCell": ("GRUCell", {}),
               "RNNCell_tanh": ("RNNCell", {}), "RNNCell_relu": ("RNNCell", {"nonlinearity": "relu"})}
_CELL_VARIANTS = [
    ("batched-hx", {"hx": "tuple"}),
    ("batched", {}),
    ("unbatched-hx", {"style": "unbatched", "hx": "tuple"}),
    ("unbatched", {"style": "unbatched"}),
    ("nobias-hx", {"kwargs": {"bias": False}, "hx": "tuple"}),
    ("B1-I_eq_H", {"B": 1, "input_size": 6}),
    ("hidden0-hx", {"H": 0, "hx": "tuple"}),
]
FORMS_CELL_SUBSET = {"batched-hx", "unbatched", "nobias-hx"}


def cell_cases():
    cases = []
    for label, (kind, kind_kwargs) in _CELL_KINDS.items():
        for suffix, fields in _CELL_VARIANTS:
            fields = dict(fields)
            kwargs = {**kind_kwargs, **fields.pop("kwargs", {})}
            cases.append(Case(name=f"{label}-{suffix}", kind=kind, kwargs=kwargs, **fields))
    return cases
