"""A tiny forward + backward of each Triton cell, for compute-sanitizer (`fastrnn gpu-run`).

    python3 -m fastrnn.gpu_smoke --cell lstm --form persistent [--proj] [--dtype bfloat16] [--tiny]
    compute-sanitizer --tool memcheck --error-exitcode 1 python3 -m fastrnn.gpu_smoke --cell gru

Every run goes through the public kernels API (fastrnn.kernels.lstm_recurrence, gru_recurrence,
rnn_recurrence) with the form forced by `fastrnn.kernels.use_form`, unsorted lengths and
reverse=True, and sizes picked to cover the masked edges: T=7, B=19 (two batch tiles of 16, the
second ragged), H=80 (not a power of two: five hidden tiles of 16 in the cooperative form, the
weights padded to 128 in the persistent one), P=24 with --proj (--tiny: T=3 B=3 H=8 P=4, for the
interpreter of a dry run). Fresh outputs are NaN-poisoned (FASTRNN_POISON=1), so an element a
kernel never writes shows up. Each run checks that the outputs and every gradient are finite and
hold the tolerance of the dtype against the float64 reference (computed on the CPU, so that under
compute-sanitizer only the kernels and a few copies run on the GPU), and that the forced form is
the one recorded. Each run prints `-> <label>` before it starts, so a sanitizer report between that
line and the run's result line belongs to it.

Exit status: 0 when every run passed, 1 when one raised, produced a NaN or missed the tolerance,
2 when the kernels cannot run here (no CUDA and no TRITON_INTERPRET=1).
"""

import argparse
import os
import sys
import time
import traceback
from dataclasses import dataclass

CELLS = ("lstm", "gru", "rnn")


@dataclass(frozen=True)
class Size:
    """T steps, B batch, H hidden, P projection (used with --proj)."""

    T: int
    B: int
    H: int
    P: int


SMALL = Size(7, 19, 80, 24)
TINY = Size(3, 3, 8, 4)
# For a form that cannot hold SMALL on this device (the persistent form in IEEE fp32 keeps K <= 64):
# still ragged (48 = three tiles of 16), padded to 64.
SMALL_FALLBACK = Size(7, 19, 48, 24)


def size_for(cell, form, dtype_name, size, proj, device):
    """(size, None) for the first of `size`, SMALL_FALLBACK the forced form can run here, else
    (None, the planner's reason): a form's documented size limit is not a kernel failure."""
    import torch

    from fastrnn import kernels
    from fastrnn.backends import BackendUnavailableError
    from fastrnn.kernels import forms

    reason = None
    for candidate in (size,) if size == TINY else (size, SMALL_FALLBACK):
        shape = forms.Shape(cell, candidate.H, candidate.P if proj else 0, candidate.B,
                            getattr(torch, dtype_name))
        try:
            with kernels.use_form(form):
                forms.plan(shape, device.type)
            return candidate, None
        except BackendUnavailableError as error:
            reason = reason or str(error)
    return None, reason


def make_inputs(cell, size, proj, device, seed=0):
    """Float64 leaves {name: tensor or None} of one problem (fastrnn.testing.recurrence_inputs)."""
    from fastrnn.testing import recurrence_inputs

    return recurrence_inputs(cell, size.T, size.B, size.H, proj, True, device, seed)


def lengths_for(size, device):
    """Unsorted lengths in [1, T] with the full length present, one per sequence of the batch."""
    import torch

    values = [max(1, (size.T * (7 * b + 3)) % (size.T + 1)) for b in range(size.B)]
    values[size.B // 2] = size.T
    return torch.tensor(values, device=device)


def call(impl, cell, inputs, lengths):
    """impl.<cell>_recurrence on `inputs` (reverse=True); the tuple of outputs."""
    if cell == "lstm":
        return impl.lstm_recurrence(inputs["gx"], inputs["h0"], inputs["c0"], inputs["w_hh"],
                                    inputs["w_hr"], lengths, True)
    if cell == "gru":
        return impl.gru_recurrence(inputs["gx"], inputs["h0"], inputs["w_hh"], inputs["b_hh"],
                                   lengths, True)
    return impl.rnn_recurrence(inputs["gx"], inputs["h0"], inputs["w_hh"], "tanh", lengths, True)


def outputs_and_grads(impl, cell, inputs, lengths, upstream):
    """{name: tensor}: the outputs and the gradients of every input under `upstream`."""
    import torch

    outputs = call(impl, cell, inputs, lengths)
    names = [k for k, v in inputs.items() if v is not None]
    grads = torch.autograd.grad(outputs, [inputs[k] for k in names],
                                [u.to(outputs[0].dtype) for u in upstream])
    found = {f"out{i}": o for i, o in enumerate(outputs)}
    found.update({f"d{k}": g for k, g in zip(names, grads)})
    return found


def run_one(cell, form, dtype_name, size, proj, device):
    """One forward + backward; returns (ok, message)."""
    import torch

    from fastrnn import kernels, reference
    from fastrnn.testing import compare

    dtype = getattr(torch, dtype_name)
    cpu = torch.device("cpu")
    inputs = make_inputs(cell, size, proj, cpu)
    lengths = lengths_for(size, cpu)
    expected_out = call(reference, cell, inputs, lengths)
    gen = torch.Generator().manual_seed(1)
    upstream = [torch.randn(o.shape, generator=gen, dtype=torch.float64) for o in expected_out]
    expected = outputs_and_grads(reference, cell, inputs, lengths, upstream)
    cast = {k: None if v is None else v.detach().to(device, dtype).requires_grad_()
            for k, v in inputs.items()}
    with kernels.use_form(form), kernels.record_forms() as records:
        actual = outputs_and_grads(kernels, cell, cast, lengths.to(device),
                                   [u.to(device) for u in upstream])
    if device.type == "cuda":
        torch.cuda.synchronize()  # a kernel fault surfaces here, inside this run's try
    problems = [name for name, tensor in actual.items() if not torch.isfinite(tensor).all()]
    if problems:
        return False, "non-finite values (NaN: an element never written?) in " + ", ".join(problems)
    ran = sorted({r["form"] for r in records})
    if ran != [form]:
        return False, f"forced form {form!r} but the kernels recorded {ran}"
    checks = [compare(actual[name], expected[name], name, dtype) for name in actual]
    failed = [c for c in checks if not c.ok]
    worst = max(checks, key=lambda c: c.rel_rms / c.tolerance.rel_rms)
    if failed:
        return False, "outside the tolerance: " + ", ".join(
            f"{c.name} rel_rms={c.rel_rms:.2e} max_err={c.max_err:.2e}" for c in failed)
    return True, f"{len(checks)} tensors ok, worst {worst.name} rel_rms={worst.rel_rms:.1e}"


def add_arguments(parser):
    parser.add_argument("--cell", nargs="+", choices=CELLS, default=list(CELLS))
    parser.add_argument("--form", nargs="+", metavar="FORM",
                        help="kernel forms to force (default: every form of fastrnn.kernels.FORMS)")
    parser.add_argument("--dtype", nargs="+", choices=("float32", "float16", "bfloat16"),
                        default=["bfloat16"])
    parser.add_argument("--proj", action="store_true",
                        help="also run the LSTM with a projection")
    parser.add_argument("--tiny", action="store_true",
                        help=f"sizes {TINY} instead of {SMALL} (the interpreter of a dry run)")
    parser.add_argument("--list-forms", action="store_true",
                        help="print fastrnn.kernels.FORMS, one per line, and exit")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastrnn.gpu_smoke",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    # Before the kernels import: outputs are NaN-filled at allocation, read at every call.
    os.environ.setdefault("FASTRNN_POISON", "1")
    import torch

    from fastrnn import kernels
    from fastrnn.backends import triton_interpreter_enabled

    if args.list_forms:
        print("\n".join(kernels.FORMS))
        return 0
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif triton_interpreter_enabled():
        device = torch.device("cpu")
    else:
        print("error: no CUDA device and TRITON_INTERPRET is not set: the kernels cannot run",
              file=sys.stderr)
        return 2
    forms = args.form or list(kernels.FORMS)
    unknown = [f for f in forms if f not in kernels.FORMS]
    if unknown:
        print(f"error: unknown form(s) {unknown}; fastrnn.kernels.FORMS = {kernels.FORMS}",
              file=sys.stderr)
        return 2
    size = TINY if args.tiny else SMALL
    runs = [(cell, form, dtype, 0) for form in forms for cell in args.cell for dtype in args.dtype]
    if args.proj and "lstm" in args.cell:
        runs += [("lstm", form, dtype, size.P) for form in forms for dtype in args.dtype]
    where = torch.cuda.get_device_name() if device.type == "cuda" else "Triton interpreter"
    print(f"gpu_smoke on {device} ({where}): {size}, lengths, reverse; "
          f"{len(runs)} runs", flush=True)
    failures = skipped = 0
    for cell, form, dtype, proj in runs:
        label = f"{cell:<4} {form:<12} {dtype:<8} P={proj:<2}"
        run_size, refused = size_for(cell, form, dtype, size, proj != 0, device)
        if run_size is None:
            skipped += 1
            print(f"{label} skip         the form cannot run this size here: {refused}", flush=True)
            continue
        if run_size != size:
            label += f" H={run_size.H}"
        print(f"-> {label}", flush=True)
        start = time.perf_counter()
        try:
            ok, message = run_one(cell, form, dtype, run_size, proj and run_size.P, device)
        except Exception as error:  # recorded and counted; the next run still goes
            traceback.print_exc()
            first = (str(error).splitlines() or [""])[0]
            ok, message = False, f"raised {type(error).__name__}: {first}"
        failures += not ok
        print(f"{label} {'ok  ' if ok else 'FAIL'} {time.perf_counter() - start:5.1f} s  {message}",
              flush=True)
    print(f"gpu_smoke: {len(runs) - failures - skipped} of {len(runs)} runs passed"
          + (f" ({skipped} skipped: a form's size limit)" if skipped else ""), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
