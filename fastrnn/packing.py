"""PackedSequence <-> padded batch as index arithmetic, with no value read on the host.

Dimensions: N packed rows, T time (len(batch_sizes)), B batch, X width.

torch's pad_packed_sequence and pack_padded_sequence size their results from batch_sizes' values,
which torch.compile and torch.export cannot know while tracing (a graph break, or a data-dependent
error under fullgraph). Here B is given by the caller (from hx, sorted_indices or the host), T is
batch_sizes' length and N the packed data's: every shape is known, and batch_sizes' values only
enter as tensors (moved to the data's device).
"""

import torch


def _layout(batch_sizes, batch, device):
    """valid (T, B) bool: step t of sequence b (in the packed, sorted order) exists; offsets (T,):
    the packed row where step t begins."""
    sizes = batch_sizes.to(device)
    offsets = torch.cumsum(sizes, 0) - sizes
    valid = torch.arange(batch, device=device).unsqueeze(0) < sizes.unsqueeze(1)
    return valid, offsets


def sorted_lengths(batch_sizes, batch):
    """(B,) int64 length of each sequence in the packed (sorted, longest first) order, on
    batch_sizes' device."""
    return _layout(batch_sizes, batch, batch_sizes.device)[0].sum(0)


def unpack(data, batch_sizes, batch, unsorted_indices=None):
    """(padded (T, B, X) with zeros past each sequence's end, lengths (B,) int64), both in the
    caller's order (unsorted_indices applied, as pad_packed_sequence does).

    data (N, X); batch_sizes (T,) int64; batch: B.
    """
    valid, offsets = _layout(batch_sizes, batch, data.device)
    rows = (offsets.unsqueeze(1) + torch.arange(batch, device=data.device)).masked_fill(~valid, 0)
    padded = data.index_select(0, rows.reshape(-1)).view(*valid.shape, data.shape[-1])
    padded = torch.where(valid.unsqueeze(2), padded, 0)
    lengths = valid.sum(0)
    if unsorted_indices is not None:
        unsorted = unsorted_indices.to(data.device)
        padded, lengths = padded.index_select(1, unsorted), lengths.index_select(0, unsorted)
    return padded, lengths


def pack(output, batch_sizes, rows, sorted_indices=None):
    """The packed rows (N, X) of output (T, B, X) in the caller's order, as
    pack_padded_sequence(output sorted by sorted_indices, lengths).data.

    rows: N, the packed data's row count.
    """
    if sorted_indices is not None:
        output = output.index_select(1, sorted_indices.to(output.device))
    steps, batch = output.shape[:2]
    sizes = batch_sizes.to(output.device)
    ends = torch.cumsum(sizes, 0)
    row = torch.arange(rows, device=output.device)
    # Row n belongs to step t = the number of steps that end at or before it.
    step = torch.searchsorted(ends, row, right=True)
    position = step * batch + (row - (ends - sizes).index_select(0, step))
    return output.reshape(steps * batch, -1).index_select(0, position)
