"""Kernel forms: planning from device facts, forcing, fallback after a failed launch, recording,
the grid barrier's error path, and NaN / inf where padding could have changed them.

Plans are computed for described devices (an H100's SM count and shared memory, smaller parts),
so these tests say what a GPU would run without one. Kernel runs go through the interpreter.
"""

import dataclasses

import pytest
import torch
import triton
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernels_helpers import Case, call, check_against_reference, make_inputs

from fastrnn import kernels, reference
from fastrnn.backends import BackendUnavailableError
from fastrnn.kernels import forms, launch, lstm

H100 = forms.DeviceFacts("H100", 132, 227 * 1024, False)
SM86 = forms.DeviceFacts("RTX 3090", 82, 99 * 1024, False)
BF16, FP32 = torch.bfloat16, torch.float32


@pytest.fixture(autouse=True)
def _fresh_planning(monkeypatch):
    """Each test starts with no remembered launch failures and no cached plans (tests patch the
    planner), and leaves none behind."""
    monkeypatch.setattr(forms, "_failed", {})
    forms.clear_plan_cache()
    yield
    forms.clear_plan_cache()


def _plan(cell, hidden, batch, dtype=BF16, proj=0, facts=H100):
    return forms.plan(forms.Shape(cell, hidden, proj, batch, dtype), "cuda:0", facts=facts)


def test_plans_on_an_h100():
    assert _plan("lstm", 128, 16).form == "persistent"
    anchor = _plan("lstm", 768, 16)
    assert (anchor.form, anchor.hidden_tiles, anchor.block_h) == ("cooperative", 48, 16)
    assert _plan("gru", 1024, 16).form == "cooperative"
    assert _plan("rnn", 256, 16).form == "persistent"
    assert _plan("lstm", 512, 16, proj=256).form == "cooperative"
    # The weights stay on chip in K chunks of 256: H = 1536 fits one slice per program, and each
    # of two 64-row batch tiles holds its own copy of the weights up to H = 1024 at B = 128.
    assert _plan("lstm", 1536, 16).form == "cooperative"
    big_batch = _plan("lstm", 1024, 128)
    assert (big_batch.form, big_batch.batch_tiles, big_batch.block_b) == ("cooperative", 2, 64)
    assert _plan("lstm", 1536, 128).form == "stepwise"
    # A hidden size that is not a multiple of 16 keeps 16-row batch tiles (forms._aligned).
    assert _plan("lstm", 1000, 16).form == "cooperative"
    assert _plan("lstm", 1000, 128).form == "stepwise"
    assert _plan("lstm", 1000, 128).block_b == 16
    assert _plan("lstm", 2048, 16).form == "stepwise"
    # IEEE fp32: one program's products spill past K = 64; split in 64-slabs they hold up to the
    # shared memory (fp32 weights are twice as large).
    assert _plan("lstm", 64, 16, FP32).form == "persistent"
    assert _plan("lstm", 768, 16, FP32).form == "cooperative"
    assert _plan("lstm", 1024, 16, FP32).form == "stepwise"


def test_split_k_follows_the_compiled_resources():
    """Slabs per product (see forms.split_k): 4 with a 16-row tile, 2 with more rows, 64-slabs
    for IEEE fp32, none when the warps can share out 64 or more columns."""
    assert forms.split_k(256, 16, 16, False) == 4
    assert forms.split_k(256, 16, 64, False) == 2
    assert forms.split_k(256, 16, 64, True) == 4
    assert forms.split_k(128, 128, 16, False) == 1
    assert forms.split_k(64, 16, 16, True) == 1


def test_the_device_moves_the_limits():
    """The LSTM at H=128 bf16 holds 128 KiB of weights: one program on an H100, not on sm_86."""
    assert _plan("lstm", 128, 16, facts=SM86).form == "cooperative"
    assert _plan("lstm", 1024, 16, facts=SM86).form == "stepwise"
    reason = _plan("lstm", 1024, 16, facts=SM86).reason
    assert "not persistent" in reason and "not cooperative" in reason


@settings(max_examples=300)
@given(cell=st.sampled_from(["lstm", "gru", "rnn"]), hidden=st.integers(1, 3000),
       batch=st.integers(1, 300), proj=st.integers(0, 1500),
       dtype=st.sampled_from([BF16, torch.float16, FP32]), sm86=st.booleans())
def test_every_plan_covers_the_problem_and_fits_its_device(cell, hidden, batch, proj, dtype,
                                                           sm86):
    proj = min(proj, hidden - 1) if cell == "lstm" and hidden > 1 else 0
    facts = SM86 if sm86 else H100
    shape = forms.Shape(cell, hidden, proj, batch, dtype)
    plan = forms.plan(shape, "cuda:0", facts=facts)
    assert plan.hidden_tiles * plan.block_h >= hidden
    assert plan.batch_tiles * plan.block_b >= batch
    assert plan.hidden_tiles * plan.block_o >= shape.h_out
    assert plan.block_b >= 16 and plan.block_h >= 16 and plan.block_o >= 16
    if plan.form == "cooperative":
        assert plan.programs <= facts.sm_count
        need = forms._slice_bytes(shape, plan.block_b, plan.block_h, plan.block_o)
        assert need <= facts.shared_memory - forms.SHARED_RESERVE
    if plan.form == "persistent":
        assert plan.hidden_tiles == 1
    meta = forms.plan_meta(shape, plan)
    for k_block, split in ((meta["BLOCK_HF"], meta["SPLIT_HF"]), (meta["BLOCK_K"],
                                                                   meta["SPLIT_K"])):
        assert k_block % split == 0 and k_block // split >= 16


def test_the_interpreter_never_picks_cooperative():
    shape = forms.Shape("lstm", 512, 0, 16, BF16)
    assert forms.plan(shape, "cpu").form == "stepwise"
    with kernels.use_form("cooperative"):
        plan = forms.plan(shape, "cpu")
    assert (plan.form, plan.hidden_tiles) == ("cooperative", 1)


def test_forcing_a_form(monkeypatch):
    shape = forms.Shape("rnn", 4096, 0, 4, FP32)
    assert forms.plan(shape, "cpu").form == "stepwise"
    monkeypatch.setenv(kernels.FORM_ENV_VAR, "cooperative")
    assert forms.plan(shape, "cpu").form == "cooperative"
    with kernels.use_form("stepwise"):
        assert forms.plan(shape, "cpu").form == "stepwise"
    monkeypatch.setenv(kernels.FORM_ENV_VAR, "sideways")
    with pytest.raises(ValueError, match="sideways"):
        forms.plan(shape, "cpu")
    with pytest.raises(ValueError, match="Unknown kernel form"):
        with kernels.use_form("sideways"):
            pass


def test_a_forced_form_that_cannot_run_raises_with_the_reason():
    with kernels.use_form("persistent"), pytest.raises(BackendUnavailableError,
                                                        match="do not fit one program"):
        _plan("lstm", 4096, 16)
    with kernels.use_form("cooperative"), pytest.raises(BackendUnavailableError,
                                                         match="no tiling"):
        _plan("lstm", 2048, 16)


def test_choose_form_says_which_and_why():
    form, reason = kernels.choose_form("gru", 512, 0, BF16, "cpu", 16)
    assert form == "stepwise" and "not cooperative" in reason


@pytest.mark.triton
def test_record_forms_reports_every_pass():
    inputs = make_inputs(Case("gru", 3, 2, 5))
    with kernels.record_forms() as records:
        out, h_n = kernels.gru_recurrence(inputs["gx"].float(), inputs["h0"].float(),
                                          inputs["w_hh"].float())
        (out.sum() + h_n.sum()).backward()
    assert [(r["cell"], r["pass"], r["form"]) for r in records] == [
        ("gru", "forward", "persistent"), ("gru", "backward", "persistent")]
    assert "1 programs" in records[0]["plan"] and records[0]["reason"]


@pytest.mark.triton
def test_a_form_that_fails_to_launch_is_remembered_and_the_next_runs(monkeypatch):
    """A compile or launch failure of the planned form (shared memory, co-residency) reruns the call
    in the next form, and the shape does not try the failed form again."""
    forward = lstm.forward
    attempts = []

    def flaky_forward(pb, store):
        attempts.append(pb.plan.form)
        if pb.plan.form == "persistent":
            raise triton.runtime.errors.OutOfResources(300000, 232448, "shared memory")
        return forward(pb, store)

    monkeypatch.setattr(lstm, "forward", flaky_forward)
    case = Case("lstm", 3, 2, 5)
    with kernels.record_forms() as records:
        check_against_reference(kernels, case, FP32)
        check_against_reference(kernels, case, FP32)
    assert attempts == ["persistent", "stepwise", "stepwise"]
    forward_records = [r for r in records if r["pass"] == "forward"]
    assert {r["form"] for r in forward_records} == {"stepwise"}
    assert "not persistent: it failed here (OutOfResources" in forward_records[0]["reason"]


@pytest.mark.triton
def test_other_errors_are_not_hidden_by_the_fallback(monkeypatch):
    def broken_forward(pb, store):
        raise IndexError("a bug, not a resource limit")

    monkeypatch.setattr(lstm, "forward", broken_forward)
    with pytest.raises(IndexError, match="a bug"):
        check_against_reference(kernels, Case("lstm", 3, 2, 5), FP32)


@pytest.mark.triton
def test_a_timed_out_barrier_raises_instead_of_hanging(monkeypatch):
    """Two programs per batch tile under the interpreter, which runs them one after another: the
    first waits for the second until its bounded spin runs out, flags the counter, and the host
    raises. This is the path a non-resident program would take on a GPU."""
    two_tiles = forms.Plan("cooperative", 16, 16, 16, 2, 1, 4, 32, "two programs per tile")
    monkeypatch.setattr(forms, "_cooperative", lambda shape, facts, forced: (two_tiles, None))
    monkeypatch.setattr(forms, "SPIN_LIMIT", 20)
    inputs = {k: None if v is None else v.detach().float()
              for k, v in make_inputs(Case("lstm", 3, 2, 20)).items()}
    with kernels.use_form("cooperative"), pytest.raises(RuntimeError, match="timed out"):
        call(kernels, Case("lstm", 3, 2, 20), inputs)


def test_cpu_tensors_need_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    inputs = make_inputs(Case("rnn", 2, 2, 4))
    with pytest.raises(ValueError, match="run on CUDA tensors"):
        kernels.rnn_recurrence(inputs["gx"].float(), inputs["h0"].float(),
                               inputs["w_hh"].float())


def test_the_barrier_watch_raises_on_a_flagged_counter():
    watch = launch.BarrierWatch()
    fine = torch.tensor([4, 8], dtype=torch.int32)
    watch.watch(fine, "test")
    flagged = torch.tensor([4, 8 | launch.BarrierWatch.FAILED_BIT], dtype=torch.int32)
    with pytest.raises(RuntimeError, match="cooperative test kernel timed out"):
        watch.watch(flagged, "test")


def _nan_positions(outputs):
    return [torch.isnan(o) for o in outputs]


@pytest.mark.triton
@pytest.mark.parametrize("form", kernels.FORMS)
def test_relu_propagates_nan_like_torch(form):
    """tl.maximum(NaN, 0) is 0 on a GPU; torch.relu keeps the NaN, and so must the kernels."""
    case = Case("rnn", 3, 2, 5, nonlinearity="relu")
    inputs = {k: None if v is None else v.detach().float() for k, v in make_inputs(case).items()}
    inputs["gx"][1, 0, 2] = float("nan")
    expected = call(reference, case, inputs)
    with kernels.use_form(form):
        actual = call(kernels, case, inputs)
    assert [m.tolist() for m in _nan_positions(actual)] == [
        m.tolist() for m in _nan_positions(expected)]
    assert torch.isnan(actual[0][1, 0, 2])


@pytest.mark.triton
@pytest.mark.parametrize("form", kernels.FORMS)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_inf_in_h0_stays_out_of_padded_units(cell, form):
    """An inf in h0 saturates the gates (finite outputs in torch). Padded units multiply it by a
    zero weight: NaN there must not reach a real unit through the next step's product."""
    case = Case(cell, 4, 3, 5)
    inputs = {k: None if v is None else v.detach().float() for k, v in make_inputs(case).items()}
    inputs["h0"][1, 2] = float("inf")
    expected = call(reference, case, inputs)
    with kernels.use_form(form):
        actual = call(kernels, case, inputs)
    for a, e in zip(actual, expected):
        assert torch.equal(torch.isnan(a), torch.isnan(e))
        assert torch.equal(torch.isinf(a), torch.isinf(e))
        finite = torch.isfinite(e)
        torch.testing.assert_close(a[finite], e[finite], rtol=1e-4, atol=1e-5)


def test_plan_describe_and_replace_keep_the_fields():
    plan = _plan("lstm", 768, 16)
    assert dataclasses.replace(plan, num_warps=4).programs == plan.programs
    assert plan.describe().startswith("cooperative: 48 programs")


def test_a_compiled_kernel_that_spills_moves_the_shape_to_the_next_form():
    """The same source spills with one triton version and not another (the 64-row LSTM tile at
    H = 1024: none with 3.9, 5 KiB with 3.6): the compiled kernel's own figure decides."""

    class Compiled:
        n_spills = 5000

    class Kernel:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: Compiled()

    inputs = make_inputs(Case("gru", 3, 2, 5))
    problem = launch.make_problem("gru", *(inputs[k].detach().float() for k in ("gx", "h0")),
                                  None, inputs["w_hh"].detach().float(), None, None, None, False)
    problem.plan = forms.plan(problem.shape, "cpu")
    assert problem.plan.form == "persistent"
    launch.launch(Kernel(), (1,), (), {}, problem, what="GRU forward")
    replanned = forms.plan(problem.shape, "cpu")
    assert replanned.form == "stepwise"
    assert "spills 5000 bytes per thread" in replanned.reason


def test_a_forced_form_runs_even_where_it_failed_before():
    shape = forms.Shape("gru", 5, 0, 2, FP32)
    forms.remember_failure("cpu", shape, "persistent", RuntimeError("spills 5000 bytes"))
    assert forms.plan(shape, "cpu").form == "stepwise"
    with kernels.use_form("persistent"):
        assert forms.plan(shape, "cpu").form == "persistent"


@pytest.mark.triton
def test_sizes_past_int32_offsets_are_refused():
    """Offsets within one step and one weight are int32 in the kernels: a call past them gets an
    error naming the backends that can run it, never a wrapped address (expanded tensors: nothing
    is allocated)."""
    batch, hidden = 2**16, 2**13
    gx = torch.zeros(1, 1, 1).expand(1, batch, 4 * hidden)
    state = torch.zeros(1, 1).expand(batch, hidden)
    w_hh = torch.zeros(1, 1).expand(4 * hidden, hidden)
    with pytest.raises(ValueError, match="int32 offsets.*backend='torch'"):
        kernels.lstm_recurrence(gx, state, state, w_hh)
