"""`majority-rnn`: the majority task with an embedding and a plain RNNCell.

Tutorial model: Embedding(2, 8), RNNCell(8, 16) unrolled, Linear(16, 2); Adam 1e-2, 30 epochs,
length 20. The metric is reported, not required: a plain RNN may fail, which is the lesson.
"""

from fastrnn.tasks.majority import Majority


class MajorityRNN(Majority):
    name = "majority-rnn"
    summary = "Embedding + RNNCell unrolled by hand on the majority task"
    defaults = {"rnn": "rnn", "epochs": 30, "hidden": 16, "lr": 1e-2, "batch_size": 64,
                "seq_len": 20, "n_train": 2000, "n_val": 500}
    sizes = {"tiny": {"epochs": 4, "seq_len": 9, "n_train": 512, "n_val": 256}}
    as_tokens = True
    embedding = (2, 8)
