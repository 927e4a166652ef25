"""Where each (step, sequence) of a call runs on the CPU path, and the per-step views of a buffer.

Dimensions: T time, B batch, X any trailing width.

Variable lengths run in a *run order* instead of under masks: the sequences sorted by length, longest
first, and for the reverse direction each sequence reversed within its own length. Every sequence
then starts at step 0 from its initial state, and the sequences still running at step t are the
first n_t rows, so a step computes on rows [:n_t] only. A finished row is never touched again, which
both freezes its state and skips its work (torch's packed path does the same by shrinking the batch;
the reference masks the whole batch at every step instead). Without lengths the run order is the
caller's own and a reverse call just walks time backwards.

A step reads the state the previous processed step wrote (the initial state for the first step);
`previous_steps` gives those as per-step views of the output history, and `pairs` splits a (T, ...)
tensor into the parts whose previous state is the history and the part whose previous state is the
initial one, for the products and factors computed for all steps at once.
"""

import torch


class Layout:
    """The run order of one call.

    Args:
        lengths: (B,) int64 valid lengths, each in [1, T], or None.
        steps, batch: T and B.  reverse: the direction of the call.
    Attributes:
        reverse: whether the loops walk time backwards (never with lengths: the run order already
            reversed each sequence).
        segments: [(s0, s1, n)], in processing order: steps s0 <= s < s1 run on rows [:n].
        lengths: (B,) run-order lengths (sorted, descending), or None when every row runs all T steps.
    """

    def __init__(self, lengths, steps, batch, reverse):
        self.steps, self.batch = steps, batch
        self.reverse = bool(reverse)
        self.segments = [(0, steps, batch)]
        self.lengths = None
        if lengths is None or batch == 0 or bool((lengths == steps).all()):
            return
        self.reverse = False
        order = torch.argsort(lengths, descending=True, stable=True)
        self.lengths = lengths[order]
        counts = (self.lengths.unsqueeze(0) > torch.arange(steps).unsqueeze(1)).sum(1).tolist()
        self.segments = []
        start = 0
        for step in range(1, steps + 1):
            if step == steps or counts[step] != counts[start]:
                self.segments.append((start, step, counts[start]))
                start = step
        t = torch.arange(steps).unsqueeze(1)
        # Run position (t, j) holds the caller's (time(t, j), order[j]); the map is its own inverse
        # per sequence, and maps steps past a sequence's end onto themselves.
        rows = torch.arange(batch)
        inverse = torch.empty_like(order)
        inverse[order] = rows
        self._to_run = (_time_map(t, self.lengths, reverse) * batch + order).reshape(-1)
        self._from_run = (_time_map(t, lengths, reverse) * batch + inverse).reshape(-1)
        self._order, self._inverse = order, inverse
        self._valid = (t < self.lengths).unsqueeze(2)  # (T, B, 1) in run order

    @property
    def packed(self):
        """True when rows run different numbers of steps (lengths given and not all T)."""
        return self.lengths is not None

    def to_run(self, x, zero_padding=False):
        """(T, B, X) in the caller's order -> run order (a copy; the same tensor without lengths).
        zero_padding: zero the steps past each sequence's end (an upstream gradient there is not
        used and must not reach a weight gradient through 0 * inf)."""
        if not self.packed:
            return x
        run = x.reshape(-1, x.shape[-1]).index_select(0, self._to_run).view(x.shape)
        return self.zero_padding(run) if zero_padding else run

    def from_run(self, x):
        """(T, B, X) in run order -> the caller's order."""
        if not self.packed:
            return x
        return x.reshape(-1, x.shape[-1]).index_select(0, self._from_run).view(x.shape)

    def rows_to_run(self, state):
        """(B, X) per-sequence tensor -> run order."""
        return state if not self.packed else state.index_select(0, self._order)

    def rows_from_run(self, state):
        """(B, X) per-sequence tensor in run order -> the caller's order."""
        return state if not self.packed else state.index_select(0, self._inverse)

    def last_steps(self, cur):
        """(B, X): each run-order row of `cur` (T, B, X, time order) at its own last step."""
        if not self.packed:
            return cur[0 if self.reverse else self.steps - 1]
        return cur[self.lengths - 1, torch.arange(self.batch)]

    def add_at_last_steps(self, cur, rows):
        """cur[last step of row j, j] += rows[j] for every run-order row j, in place."""
        if not self.packed:
            cur[0 if self.reverse else self.steps - 1] += rows
            return
        index = (self.lengths - 1) * self.batch + torch.arange(self.batch)
        cur.view(-1, cur.shape[-1]).index_add_(0, index, rows)

    def zero_padding(self, x):
        """x (T, B, X) in run order with the steps past each sequence's end set to 0, in place."""
        return x.masked_fill_(~self._valid, 0) if self.packed else x

    def new_buffer(self, shape, like):
        """A fresh (T, B, X) buffer. Zeroed when packed: the rows a step skips must read as zero
        outputs and stay finite in the products after the loop."""
        shape = (self.steps, *shape)
        return like.new_zeros(shape) if self.packed else like.new_empty(shape)

    def steps_of(self, x, segment):
        """Per-step views of x (T, B, X) for the steps of `segment`, in processing order, each
        (n, X): one unbind per segment instead of a slice per step."""
        s0, s1, n = segment
        if self.reverse:
            return x.unbind(0)[::-1]
        return (x[s0:s1] if n == self.batch else x[s0:s1, :n]).unbind(0)

    def previous_steps(self, history, segment, initial):
        """Per-step views, for the steps of `segment` in processing order, of what the previous
        processed step wrote into `history` (T, B, X), or of `initial` (B, X) for the first step.
        Each has the segment's n rows (running now implies running at the previous step)."""
        s0, s1, n = segment
        if self.reverse:
            return (initial, *history.unbind(0)[:0:-1])
        if s0 == 0:
            return (initial[:n], *history[: s1 - 1, :n].unbind(0))
        return history[s0 - 1 : s1 - 1, :n].unbind(0)

    def pairs(self, x, history, initial):
        """[(x part, previous state part)]: x (T, ...) in time order split by whether a step's
        previous state is in `history` (T, ...) or is `initial` (...); empty parts are left out."""
        first = (x[:1], initial.unsqueeze(0))
        if self.reverse:
            first = (x[-1:], initial.unsqueeze(0))
            rest = (x[:-1], history[1:])
        else:
            previous = history[:-1]
            if self.packed:
                # A step past a sequence's end has zero gradients, but the state before it (the
                # sequence's last) may hold an Inf, and 0 * Inf is NaN in the product: torch.nn
                # never computes those steps, so they pair with zeros here.
                previous = previous.masked_fill(~self._valid[1:], 0)
            rest = (x[1:], previous)
        return [first] + ([rest] if self.steps > 1 else [])

def _time_map(t, lengths, reverse):
    """(T, B) time index of run step t of each sequence: t, or length - 1 - t within the sequence
    when reversed (steps past the end map to themselves)."""
    if not reverse:
        return t.expand(-1, lengths.shape[0])
    return torch.where(t < lengths, lengths - 1 - t, t)
