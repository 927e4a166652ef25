"""The Triton kernels compiled for a real GPU (marker `gpu`; skipped without CUDA).

What the interpreter cannot check: the tl.dot >= 16 rule, register and shared-memory limits, the
compiled bf16/fp16 tensor-core products, the cooperative form with many programs per batch tile
(its grid barrier cannot run in the interpreter), large sizes, long sequences, and parity with
torch.nn on cuDNN. TF32 is off for parity. The most informative tests come first: a time-boxed
run (`fastrnn gpu-run`) keeps what finished.
"""

import pytest
import torch

pytest.importorskip("triton")

from test_kernels_helpers import Case, call, check_against_reference, make_inputs  # noqa: E402

from fastrnn import functional, kernels  # noqa: E402
from fastrnn.backends import BackendUnavailableError  # noqa: E402
from fastrnn.kernels import forms, launch  # noqa: E402
from fastrnn.testing import assert_all_close  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
CELLS = ("lstm", "gru", "rnn")


@pytest.fixture(autouse=True)
def _parity_settings(monkeypatch):
    monkeypatch.setenv("FASTRNN_POISON", "1")
    monkeypatch.setattr(forms, "_failed", {})
    forms.clear_plan_cache()
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    kernels.synchronize()


def _lengths(batch, steps):
    """Unsorted lengths in [1, T] with the full length present."""
    values = [max(1, (steps * (7 * b + 3)) % (steps + 1)) for b in range(batch)]
    values[batch // 2] = steps
    return tuple(values)


def _forced(form, case, dtype, run):
    """Run `run()` with `form` forced; skip with the planner's reason when the form cannot run the
    case's size on this GPU (that is the planner's documented limit, not a failure)."""
    shape = forms.Shape(case.cell, case.hidden, case.proj, case.batch, dtype)
    try:
        with kernels.use_form(form):
            forms.plan(shape, "cuda")
    except BackendUnavailableError as error:
        pytest.skip(str(error))
    with kernels.use_form(form), kernels.record_forms() as records:
        result = run()
    assert {r["form"] for r in records} == {form}
    return result


# The size each form is meant for on an H100 (fp32 runs IEEE products: smaller resident sizes).
FORM_SIZES = {"persistent": {"half": 96, "fp32": 60}, "cooperative": {"half": 500, "fp32": 200},
              "stepwise": {"half": 1100, "fp32": 700}}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("form", kernels.FORMS)
@pytest.mark.parametrize("cell", CELLS)
def test_each_form_against_reference(cell, form, dtype):
    hidden = FORM_SIZES[form]["fp32" if dtype == torch.float32 else "half"]
    case = Case(cell, 24, 17, hidden, lengths=_lengths(17, 24), reverse=True)
    _forced(form, case, dtype, lambda: check_against_reference(kernels, case, dtype,
                                                               device="cuda"))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("form", kernels.FORMS)
def test_lstm_projection(dtype, form):
    hidden = FORM_SIZES[form]["fp32" if dtype == torch.float32 else "half"]
    case = Case("lstm", 24, 17, hidden, proj=hidden // 3, lengths=_lengths(17, 24), reverse=True)
    _forced(form, case, dtype, lambda: check_against_reference(kernels, case, dtype,
                                                               device="cuda"))


def _outputs_and_grads(case, dtype, form, seed=0):
    """Outputs and every gradient of one run in `form` (fp32 upstream gradients, fixed seed)."""
    inputs = {k: None if v is None else v.detach().to(dtype).requires_grad_()
              for k, v in make_inputs(case, "cuda", seed).items()}
    outputs = _forced(form, case, dtype, lambda: call(kernels, case, inputs, "cuda"))
    gen = torch.Generator(device="cuda").manual_seed(seed + 1)
    upstream = [torch.randn(o.shape, generator=gen, device="cuda").to(dtype) for o in outputs]
    names = [k for k, v in inputs.items() if v is not None]
    grads = torch.autograd.grad(outputs, [inputs[k] for k in names], upstream)
    return [*outputs, *grads]


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16), ids=str)
@pytest.mark.parametrize("case", [Case("lstm", 40, 17, 384, lengths=_lengths(17, 40)),
                                  Case("lstm", 40, 17, 384, proj=128, lengths=_lengths(17, 40),
                                       reverse=True),
                                  Case("gru", 40, 17, 384, lengths=_lengths(17, 40), reverse=True),
                                  Case("rnn", 40, 17, 384, nonlinearity="relu")], ids=str)
def test_cooperative_and_stepwise_are_bitwise_equal(case, dtype):
    """Where cooperative runs, stepwise runs the same step bodies on the same tiles with the kernel
    boundary as the barrier: any difference is a race or a missing barrier."""
    if dtype == torch.float32:
        case = Case(case.cell, case.steps, case.batch, 200, proj=case.proj and 64,
                    lengths=case.lengths, reverse=case.reverse, nonlinearity=case.nonlinearity)
    cooperative = _outputs_and_grads(case, dtype, "cooperative")
    stepwise = _outputs_and_grads(case, dtype, "stepwise")
    for a, b in zip(cooperative, stepwise):
        assert torch.equal(a, b)


def _count_barriers(monkeypatch):
    """Capture the counters of every cooperative launch."""
    captured = []
    make = launch.counters

    def counters(problem):
        tensor = make(problem)
        captured.append((problem.plan, tensor))
        return tensor

    monkeypatch.setattr(launch, "counters", counters)
    return captured


@pytest.mark.parametrize("jitter", [False, True], ids=["lockstep", "late-arrivals"])
@pytest.mark.parametrize("case", [Case("lstm", 4096, 16, 256), Case("gru", 4096, 16, 512),
                                  Case("lstm", 1024, 16, 512, proj=256)], ids=str)
def test_barrier_stress(case, jitter, monkeypatch):
    """Thousands of grid barriers: every counter ends at programs x barriers with the error bit
    clear, and the results equal stepwise's bit for bit (also when programs arrive late at random
    steps)."""
    if jitter:
        monkeypatch.setenv(forms.JITTER_ENV_VAR, "1")
    captured = _count_barriers(monkeypatch)
    cooperative = _outputs_and_grads(case, torch.bfloat16, "cooperative")
    kernels.synchronize()
    per_step = 2 if case.proj else 1
    assert len(captured) == 2
    for plan, tensor in captured:
        assert plan.hidden_tiles > 1
        expected = plan.hidden_tiles * per_step * case.steps
        assert tensor.tolist() == [expected] * plan.batch_tiles
    monkeypatch.delenv(forms.JITTER_ENV_VAR, raising=False)
    stepwise = _outputs_and_grads(case, torch.bfloat16, "stepwise")
    for a, b in zip(cooperative, stepwise):
        assert torch.equal(a, b)


@pytest.mark.parametrize("form", ("auto", "stepwise"))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("batch", (1, 17, 128))
@pytest.mark.parametrize("hidden", (96, 256, 500, 1024))
@pytest.mark.parametrize("cell", CELLS)
def test_sizes_against_reference(cell, hidden, batch, dtype, form):
    case = Case(cell, 16, batch, hidden, lengths=_lengths(batch, 16), reverse=batch == 17)
    if form == "auto":
        check_against_reference(kernels, case, dtype, device="cuda")
    else:
        _forced(form, case, dtype, lambda: check_against_reference(kernels, case, dtype,
                                                                   device="cuda"))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cell", CELLS)
def test_persistent_at_its_limit_on_this_device(cell, dtype):
    """The largest H the planner runs persistent on this GPU compiles and runs there."""
    fits = [h for h in (16, 32, 64, 128, 256, 512)
            if forms.plan(forms.Shape(cell, h, 0, 17, dtype), "cuda").form == "persistent"]
    case = Case(cell, 32, 17, max(fits) - 3, lengths=_lengths(17, 32))
    _forced("persistent", case, dtype, lambda: check_against_reference(kernels, case, dtype,
                                                                       device="cuda"))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cell,hidden", [("lstm", 96), ("gru", 256), ("rnn", 500)])
def test_long_sequence(cell, hidden, dtype):
    case = Case(cell, 2048, 17, hidden, lengths=_lengths(17, 2048))
    check_against_reference(kernels, case, dtype, device="cuda")


def _module_weights(module):
    names = ("weight_ih_l{}{}", "weight_hh_l{}{}", "bias_ih_l{}{}", "bias_hh_l{}{}",
             "weight_hr_l{}{}")
    weights = []
    for layer in range(module.num_layers):
        for suffix in ("", "_reverse")[: 2 if module.bidirectional else 1]:
            weights.append(tuple(getattr(module, n.format(layer, suffix), None) for n in names))
    return weights


@pytest.mark.parametrize("mode,hidden,proj", [("LSTM", 256, 0), ("LSTM", 200, 96),
                                              ("GRU", 500, 0), ("RNN_TANH", 96, 0),
                                              ("RNN_RELU", 1024, 0)])
def test_matches_cudnn_fp32(mode, hidden, proj):
    """functional.recurrent_stack(backend='triton') against torch.nn on cuDNN, same weights,
    2 layers, bidirectional, fp32 with TF32 off."""
    torch.manual_seed(0)
    kwargs = {"num_layers": 2, "bidirectional": True}
    if mode == "LSTM":
        module = torch.nn.LSTM(64, hidden, proj_size=proj, **kwargs)
    elif mode == "GRU":
        module = torch.nn.GRU(64, hidden, **kwargs)
    else:
        module = torch.nn.RNN(64, hidden, nonlinearity=mode[4:].lower(), **kwargs)
    module = module.cuda()
    x = torch.randn(50, 17, 64, device="cuda", requires_grad=True)
    expected_out, expected_h = module(x)
    expected_h = list(expected_h) if mode == "LSTM" else [expected_h]
    upstream = [torch.randn_like(t) for t in [expected_out, *expected_h]]
    params = list(module.parameters())
    expected_grads = torch.autograd.grad([expected_out, *expected_h], [x, *params], upstream)
    out, finals = functional.recurrent_stack(mode, x, None, _module_weights(module),
                                             bidirectional=True, backend="triton")
    grads = torch.autograd.grad([out, *finals], [x, *params], upstream)
    actual = {"out": out, **{f"h{i}": f for i, f in enumerate(finals)},
              **{f"g{i}": g for i, g in enumerate(grads)}}
    expected = {"out": expected_out, **{f"h{i}": f for i, f in enumerate(expected_h)},
                **{f"g{i}": g for i, g in enumerate(expected_grads)}}
    assert_all_close(actual, expected, dtype=torch.float32)


@pytest.mark.parametrize("form", kernels.FORMS)
def test_tf32_switch(form):
    """With TF32 enabled explicitly the fp32 products run in TF32 (10-bit mantissa): held to the
    bf16 tolerance (7-bit), the nearest looser row of the table."""
    case = Case("lstm", 8, 17, 48 if form == "persistent" else 300)
    torch.backends.cuda.matmul.allow_tf32 = True
    _forced(form, case, torch.float32, lambda: check_against_reference(
        kernels, case, torch.float32, device="cuda", tolerance=torch.bfloat16))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
@pytest.mark.parametrize("form", kernels.FORMS)
def test_runs_on_the_inputs_device_not_the_current_one(form):
    """Triton launches on the current device: the launchers must enter the inputs' device."""
    case = Case("gru", 8, 5, 300)
    with torch.cuda.device(0):
        _forced(form, case, torch.bfloat16, lambda: check_against_reference(
            kernels, case, torch.bfloat16, device="cuda:1"))
