"""The time loop shared by the reference cells: order of steps and variable-length masking."""

import torch


def step_masks(lengths, steps, like):
    """(T, B, 1) bool masks, True where step t is inside sequence b; None when lengths is None."""
    if lengths is None:
        return None
    t = torch.arange(steps, device=like.device).unsqueeze(1)
    return (t < lengths.to(like.device).unsqueeze(0)).unsqueeze(2)


def run_recurrence(step, gx, state, lengths=None, reverse=False):
    """Run `step(gx_t, state) -> state` over time; state[0] is the output of a step.

    Args:
        step: function of (gx_t (B, X), state tuple) returning the new state tuple.
        gx: (T, B, X) per-step inputs.
        state: tuple of (B, *) initial states.
        lengths: optional (B,) valid lengths; finished sequences keep their state, output zeros.
        reverse: iterate t = T-1 .. 0.
    Returns:
        (output (T, B, H_out), final state tuple).
    """
    steps = gx.shape[0]
    masks = step_masks(lengths, steps, gx)
    outputs = [None] * steps
    # unbind, not gx[t]: the backward of T selects would build T full-size (T, B, X) gradients.
    inputs = gx.unbind(0)
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        if masks is None:
            state = step(inputs[t], state)
            outputs[t] = state[0]
        else:
            valid = masks[t]
            # A row outside its sequence steps from a zero state, not its own: its result is
            # discarded, but an Inf kept in its state would make that discarded step NaN, and
            # the backward's zero gradient times NaN would reach the weights (torch.nn never
            # computes those steps).
            new_state = step(inputs[t], tuple(torch.where(valid, old, 0.0) for old in state))
            state = tuple(torch.where(valid, new, old) for new, old in zip(new_state, state))
            outputs[t] = torch.where(valid, new_state[0], 0.0)
    return torch.stack(outputs), state
