"""Where each (step, sequence) of a call runs on the CPU path, and the per-step views of a buffer.

Dimensions: T time, B batch, N = sum(lengths) valid (step, sequence) pairs, X any trailing width.

Variable lengths run in a *run order* instead of under masks: the sequences sorted by length, longest
first, and for the reverse direction each sequence reversed within its own length. Every sequence
then starts at step 0 from its initial state, and the sequences still running at step t are the
first n_t rows, so a step computes on rows [:n_t] only. A finished row is never touched again, which
both freezes its state and skips its work (torch's packed path does the same by shrinking the batch;
the reference masks the whole batch at every step instead). Without lengths the run order is the
caller's own and a reverse call just walks time backwards.

Buffers. Without lengths (or when every length is T) a per-step buffer is (T, B, X) and step t is
x[t]. With variable lengths it is *packed*: (N, X), step t at rows [offset_t, offset_t + n_t), the
layout of PackedSequence.data for sorted sequences. The rows a step uses stay one contiguous slice,
and no buffer holds (or has to zero, or mask out of a product) the T*B - N padding positions.

Packed input. The caller's tensors may themselves be packed (`packed_input`): (N, X) rows of
PackedSequence.data, whose sequences are sorted by length (lengths non-increasing). That is the
forward direction's run order itself, so to_run and from_run are the same tensor; the reverse
direction gathers and scatters the rows once. With every length T such a tensor is (T*B, X), a
(T, B, X) tensor flattened, and runs unpacked.

A step reads the state the previous processed step wrote (the initial state for the first step);
`previous_steps` gives those as per-step views of the output history, and `pairs` splits a buffer
into the part whose previous state is the initial one and the part whose previous state is in the
history, for the products and factors computed for all steps at once.
"""

import numpy as np
import torch


class Layout:
    """The run order of one call.

    Args:
        lengths: (B,) int64 valid lengths, each in [1, T], or None.
        steps, batch: T and B.  reverse: the direction of the call.
        packed_input: the caller's per-step tensors are packed (N, X) rows of sequences sorted by
            length, as PackedSequence.data (lengths required, non-increasing), not (T, B, X).
    Attributes:
        reverse: whether the loops walk time backwards (never with lengths: the run order already
            reversed each sequence).
        segments: [(s0, s1, n)], in processing order: steps s0 <= s < s1 run on rows [:n].
        lengths: (B,) run-order lengths (sorted, descending), or None when every row runs all T steps.
        rows: the first dimension of a packed buffer, N (T*B when not packed).
    """

    def __init__(self, lengths, steps, batch, reverse, packed_input=False):
        self.steps, self.batch = steps, batch
        self.reverse = bool(reverse)
        self.segments = [(0, steps, batch)]
        self.lengths = None
        self.rows = steps * batch
        self.packed_input = packed_input
        # The caller's packed rows are the run order itself (packed input, forward direction).
        self._identity = False
        if packed_input and (lengths is None or bool((lengths[1:] > lengths[:-1]).any())):
            raise ValueError("packed input needs its lengths, sorted longest first (as "
                             "PackedSequence sorts them)")
        if lengths is None or batch == 0 or bool((lengths == steps).all()):
            return
        self.reverse = False
        self._reversed = bool(reverse)  # the run order reverses each sequence
        order = torch.argsort(lengths, descending=True, stable=True)
        self.lengths = lengths[order]
        t = torch.arange(steps).unsqueeze(1)
        valid = t < self.lengths  # (T, B) in run order
        counts = valid.sum(1)
        self.segments = []
        start = 0
        count_list = counts.tolist()
        for step in range(1, steps + 1):
            if step == steps or count_list[step] != count_list[start]:
                self.segments.append((start, step, count_list[start]))
                start = step
        # offsets[t]: the packed row where step t begins; offsets[T] = N.
        offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        self._offsets = offsets.tolist()
        self.rows = self._offsets[-1]
        # Packed run-order row (t, j) holds the caller's (time(t, j), order[j]): its row in the
        # caller's flattened (T*B, X) tensor, or in the caller's packed rows (where order is the
        # identity: the sequences come sorted).
        time = _time_map(t, self.lengths, reverse)
        if packed_input:
            self._gather = (offsets[time] + torch.arange(batch))[valid]
            self._identity = not reverse
        else:
            self._gather = (time * batch + order)[valid]
        # The packed row of (t - 1, j) for every row (t, j) with t >= 1 (rows B.. of a buffer):
        # running at t implies running at t - 1, at the same position j.
        row = torch.arange(batch, self.rows)
        step = torch.searchsorted(offsets, row, right=True) - 1
        self._previous = offsets[step - 1] + (row - offsets[step])
        # Each run-order row's last step.
        self._last = offsets[self.lengths - 1] + torch.arange(batch)
        self._order = order
        self._inverse = torch.empty_like(order)
        self._inverse[order] = torch.arange(batch)

    @property
    def packed(self):
        """True when rows run different numbers of steps (lengths given and not all T)."""
        return self.lengths is not None

    @property
    def needs_gather(self):
        """True when the caller's rows are not already in run order (to_run copies)."""
        return self.packed and not self._identity

    def to_run(self, x):
        """(T, B, X) in the caller's order -> run order: packed (N, X), one gather of the valid
        positions (a copy); without lengths the same tensor. Packed input (N, X): the same tensor
        in the forward direction, one gather in the reverse one; (T, B, X) when not packed."""
        if not self.packed:
            return x.view(self.steps, self.batch, x.shape[-1]) if self.packed_input else x
        if self._identity:
            return x
        return x.reshape(-1, x.shape[-1]).index_select(0, self._gather)

    def from_run(self, x):
        """Run order (packed (N, X), or (T, B, X) without lengths) -> (T, B, X) in the caller's
        order, zero past each sequence's end; packed input: the caller's (N, X) rows."""
        if not self.packed:
            return x.reshape(-1, x.shape[-1]) if self.packed_input else x
        if self._identity:
            return x
        if self.packed_input:
            return x.new_empty(x.shape).index_copy_(0, self._gather, x)
        padded = x.new_zeros(self.steps * self.batch, x.shape[-1])
        return padded.index_copy_(0, self._gather, x).view(self.steps, self.batch, x.shape[-1])

    def from_run_in_place(self, buffer, chunk=16):
        """buffer (T*B, X) whose first N rows hold a packed run-order tensor -> the (T, B, X)
        tensor from_run returns, in buffer's own storage (no second buffer as large as the
        result).

        First each run step t moves to rows [tB, (t+1)B) (row j to tB + order[j]): they start at
        or after all packed rows of steps <= t (offset_t <= tB), so moving `chunk` steps at a
        time, the last first, never overwrites a packed row that is still to move. That is the
        result for the forward direction; for the reverse one each sequence's steps are then
        reversed within its length by swapping row pairs, `chunk` * B pairs at a time.

        Packed input: from_run of buffer's first N rows (the rows themselves in the forward
        direction, one (N, X) scatter in the reverse one)."""
        if self.packed_input:
            return self.from_run(buffer[: self.rows])
        offsets, batch = self._offsets, self.batch
        t = torch.arange(self.steps).unsqueeze(1)
        if self._reversed:
            placed = (t * batch + self._order)[t < self.lengths]
        else:
            placed = self._gather
        for s1 in range(self.steps, 0, -chunk):
            s0 = max(0, s1 - chunk)
            rows = buffer[offsets[s0] : offsets[s1]].clone()
            buffer[s0 * batch : s1 * batch].zero_()
            buffer.index_copy_(0, placed[offsets[s0] : offsets[s1]], rows)
        if self._reversed:
            # Sequence order[j]'s steps tau and length - 1 - tau, for tau below half its length.
            swap = t < self.lengths // 2
            first = (t * batch + self._order)[swap]
            second = ((self.lengths - 1 - t) * batch + self._order)[swap]
            for start in range(0, first.shape[0], chunk * batch):
                a, b = first[start : start + chunk * batch], second[start : start + chunk * batch]
                rows_a, rows_b = buffer.index_select(0, a), buffer.index_select(0, b)
                buffer.index_copy_(0, a, rows_b).index_copy_(0, b, rows_a)
        return buffer.view(self.steps, batch, buffer.shape[-1])

    def rows_to_run(self, state):
        """(B, X) per-sequence tensor -> run order."""
        # Packed input comes sorted: its run order is its own.
        return state if not self.packed or self.packed_input else state.index_select(0, self._order)

    def rows_from_run(self, state):
        """(B, X) per-sequence tensor in run order -> the caller's order."""
        return state if not self.packed or self.packed_input else state.index_select(0, self._inverse)

    def last_steps(self, cur):
        """(B, X): each run-order row of `cur` (a buffer, time order) at its own last step."""
        if not self.packed:
            return cur[0 if self.reverse else self.steps - 1]
        return cur.index_select(0, self._last)

    def add_at_last_steps(self, cur, rows):
        """cur[last step of row j, j] += rows[j] for every run-order row j, in place."""
        if not self.packed:
            cur[0 if self.reverse else self.steps - 1] += rows
            return
        cur.index_add_(0, self._last, rows)

    def new_buffer(self, shape, like):
        """A fresh per-step buffer for rows of `shape` (B, X): (T, B, X), or packed (N, X). Not
        zeroed: every step writes all the rows it runs, and a packed buffer has no others."""
        if self.packed:
            return like.new_empty((self.rows, *shape[1:]))
        return like.new_empty((self.steps, *shape))

    def _block(self, x, s0, s1, n):
        """Steps s0 <= s < s1 of packed x, all with n rows: (s1 - s0, n, X) views."""
        start = self._offsets[s0]
        return x[start : start + (s1 - s0) * n].unflatten(0, (s1 - s0, n)).unbind(0)

    def steps_of(self, x, segment):
        """Per-step views of a buffer x for the steps of `segment`, in processing order, each
        (n, X): one unbind per segment instead of a slice per step."""
        s0, s1, n = segment
        if self.packed:
            return self._block(x, s0, s1, n)
        if self.reverse:
            return x.unbind(0)[::-1]
        return (x[s0:s1] if n == self.batch else x[s0:s1, :n]).unbind(0)

    def step_addresses(self, x, segment):
        """(addresses, row strides), int64 (steps,) arrays, of the views steps_of(x, segment)
        gives, without making them (a view costs about 0.5 us, a Python list of T addresses
        about as much per step: a whole-loop call over T steps needs only these)."""
        s0, s1, n = segment
        size, stride = x.element_size(), x.stride()
        if self.packed:
            row = stride[0]
            base = x.data_ptr() + self._offsets[s0] * row * size
            return progression(base, n * row * size, s1 - s0), constant(row, s1 - s0)
        if self.reverse:
            times = progression(self.steps - 1, -1, self.steps)
        else:
            times = progression(s0, 1, s1 - s0)
        return x.data_ptr() + times * (stride[0] * size), constant(stride[1], len(times))

    def previous_addresses(self, history, segment, initial):
        """(addresses, row strides), int64 (steps,) arrays, of the views
        previous_steps(history, segment, initial) gives, without making them."""
        s0, s1, n = segment
        size, stride = history.element_size(), history.stride()
        if self.packed:
            row = stride[0]
            start = self._offsets[s0]
            rest = progression(history.data_ptr() + start * row * size, n * row * size,
                                s1 - 1 - s0)
            if s0 > 0:
                first = history.data_ptr() + self._offsets[s0 - 1] * row * size
                return np.concatenate([constant(first, 1), rest]), constant(row, s1 - s0)
            rest_stride = row
        else:
            if self.reverse:
                times = progression(self.steps - 1, -1, self.steps - 1)
            else:
                times = progression(max(s0 - 1, 0), 1, s1 - 1 - max(s0 - 1, 0))
            rest = history.data_ptr() + times * (stride[0] * size)
            if not (self.reverse or s0 == 0):
                return rest, constant(stride[1], len(rest))
            rest_stride = stride[1]
        return (np.concatenate([constant(initial.data_ptr(), 1), rest]),
                np.concatenate([constant(initial.stride(0), 1), constant(rest_stride, len(rest))]))

    def gather_addresses(self, segment):
        """The addresses of gather_steps(segment)'s (n,) index views, an int64 (steps,) array,
        without making them."""
        s0, s1, n = segment
        base, size = self._gather.data_ptr(), self._gather.element_size()
        return progression(base + self._offsets[s0] * size, n * size, s1 - s0)

    def gather_steps(self, segment):
        """Per-step (n,) row indices into the caller's flattened (T*B, X) tensor (packed input:
        its (N, X) rows) for the steps of `segment` (packed only): step t's rows in run order, for
        an index_select of that step."""
        s0, s1, n = segment
        return self._block(self._gather, s0, s1, n)

    def previous_steps(self, history, segment, initial):
        """Per-step views, for the steps of `segment` in processing order, of what the previous
        processed step wrote into the buffer `history`, or of `initial` (B, X) for the first step.
        Each has the segment's n rows (running now implies running at the previous step)."""
        s0, s1, n = segment
        if self.reverse:
            return (initial, *history.unbind(0)[:0:-1])
        if not self.packed:
            if s0 == 0:
                return (initial[:n], *history[: s1 - 1, :n].unbind(0))
            return history[s0 - 1 : s1 - 1, :n].unbind(0)
        if s0 == 0:
            first = initial[:n]
        else:
            # The step before the segment ran more rows: its first n.
            first = history[self._offsets[s0 - 1] : self._offsets[s0 - 1] + n]
        return (first, *self._block(history, s0, s1 - 1, n))

    def pairs(self, x, history, initial):
        """[(x part, previous state part)]: x (a buffer, time order) split by whether a step's
        previous state is `initial` (B, ...) or in the buffer `history`; empty parts are left
        out. Packed, the previous states of rows B.. are one gather of `history` (a copy)."""
        if self.packed:
            first = (x[: self.batch], initial)
            if self.rows == self.batch:
                return [first]
            return [first, (x[self.batch :], history.index_select(0, self._previous))]
        first = (x[:1], initial.unsqueeze(0))
        if self.reverse:
            first = (x[-1:], initial.unsqueeze(0))
            rest = (x[:-1], history[1:])
        else:
            rest = (x[1:], history[:-1])
        return [first] + ([rest] if self.steps > 1 else [])


def _time_map(t, lengths, reverse):
    """(T, B) time index of run step t of each sequence: t, or length - 1 - t within the sequence
    when reversed (steps past the end map to themselves)."""
    if not reverse:
        return t.expand(-1, lengths.shape[0])
    return torch.where(t < lengths, lengths - 1 - t, t)


# NumPy, not torch: these arrays are a few hundred integers, where a torch op's dispatch (a few
# microseconds each, some twenty per whole-loop call) costs more than the arithmetic.
def progression(first, step, count):
    """first + k*step for k = 0..count-1, an int64 array."""
    return np.arange(count, dtype=np.int64) * step + first


def constant(value, count):
    """value repeated count times, an int64 array (a column of fused.addresses)."""
    return np.full(count, value, dtype=np.int64)
