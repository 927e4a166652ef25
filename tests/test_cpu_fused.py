"""The CPU path's fused steps (fastrnn/cpu/fused_steps.c, loaded by fastrnn.cpu.fused): the float32
activations against torch's, every LSTM and GRU recurrence through them and through the ATen
fallback against the float64 reference, strided and expanded tensors, and how the library is
built, cached, switched off and given up on.
"""

import shutil
from types import SimpleNamespace

import pytest
import torch

from fastrnn import cpu, reference
from fastrnn.cpu import fused, lstm
from fastrnn.testing import assert_close, recurrence_inputs
from tests.test_cpu_backend import LENGTH_IDS, LENGTHS, _call, _results

CELLS = [("lstm", 0), ("lstm", 3), ("gru", 0)]
CELL_IDS = ["lstm", "lstm-proj", "gru"]
HAS_COMPILER = fused._compiler() is not None
needs_compiler = pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler on this machine")


@pytest.fixture
def fresh_load(monkeypatch, tmp_path):
    """fused's one-time load forgotten before and after the test, its cache in tmp_path."""
    monkeypatch.setenv("FASTRNN_CACHE_DIR", str(tmp_path))
    fused._load.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    fused._load.cache_clear()


def _counting(monkeypatch):
    """Route fused.steps through wrappers that count each step function's calls (not the weight
    packing a whole loop's caller runs once per call)."""
    calls = {}
    steps = fused.steps

    def counted(dtype):
        table = steps(dtype)
        if table is None:
            return None

        def wrap(name):
            def call(*args):
                if name != "pack_panels":
                    calls[name] = calls.get(name, 0) + 1
                return getattr(table, name)(*args)
            return call

        return SimpleNamespace(**{name: wrap(name) for name in vars(table)})

    monkeypatch.setattr(fused, "steps", counted)
    return calls


@needs_compiler
def test_the_steps_are_built_where_a_compiler_is():
    assert fused.steps(torch.float32) is not None and fused.steps(torch.float64) is not None
    assert fused.steps(torch.float16) is None
    assert fused.status().startswith("compiled by ")


@needs_compiler
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_float_activations_match_torch_to_two_ulp(name):
    """Over the whole range, the saturated tails, subnormals, signed zeros, +-inf and NaN."""
    grid = torch.linspace(-120, 120, 240_001)
    tiny = torch.logspace(-44, 1, 5_000)
    specials = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 87.0, -87.0,
                             88.5, -88.5, 1e-45, -1e-45, 0.625, -0.625, 0.62499994])
    x = torch.cat([grid, tiny, -tiny, torch.randn(100_000, generator=torch.Generator().manual_seed(0)),
                   specials])
    y = torch.empty_like(x)
    getattr(fused.steps(torch.float32), name)(x.numel(), x.data_ptr(), y.data_ptr())
    exact = getattr(torch, name)(x.double())
    assert torch.equal(torch.isnan(y), torch.isnan(exact))
    finite = ~torch.isnan(exact)
    error = (y.double() - exact)[finite].abs()
    # Two float32 ulps of the exact value (relative), and absolutely where it is below the
    # smallest normal float: float32 cannot do better than denormal steps there.
    bound = torch.maximum(2 * torch.finfo(torch.float32).eps * exact[finite].abs(),
                          torch.full_like(error, torch.finfo(torch.float32).tiny))
    worst = int((error / bound).argmax())
    assert bool((error <= bound).all()), (x[finite][worst].item(), y[finite][worst].item(),
                                          exact[finite][worst].item())
    # The limits torch gives, exactly (a gate closed by -inf must be 0, not a tiny number).
    limits = {"sigmoid": (1.0, 0.0), "tanh": (1.0, -1.0)}[name]
    assert y[-12:-10].tolist() == list(limits)


def _check(cell, proj, steps, batch, lengths, reverse, dtype, hidden=4):
    inputs = recurrence_inputs(cell, steps, batch, hidden, proj=proj)
    cast = {k: None if v is None else v.detach().to(dtype) for k, v in inputs.items()}
    lengths = None if lengths is None else torch.tensor(lengths)
    expected = _results(reference, cell, "tanh", inputs, lengths, reverse)
    actual = _results(cpu, cell, "tanh", cast, lengths, reverse)
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        assert actual[name].dtype == dtype
        assert_close(actual[name], value, name)


def _set_whole_loop(monkeypatch, on):
    """Every LSTM segment (without projection) through the whole loop, or none."""
    monkeypatch.setattr(fused, "LOOP_MAX_ROWS", 10**6 if on else 0)
    monkeypatch.setattr(fused, "LOOP_MAX_WEIGHT", 10**9 if on else 0)


def _expected_functions(cell, proj, whole_loop):
    """The fused functions a call runs: the LSTM without projection runs whole loops up to
    fused.LOOP_MAX_ROWS rows (its product in C), everything else a step call per step."""
    if cell == "lstm" and not proj and whole_loop:
        return {"lstm_forward_loop", "lstm_backward_loop"}
    return {f"{cell}_forward", f"{cell}_backward"}


@needs_compiler
@pytest.mark.parametrize("whole_loop", [False, True], ids=["steps", "loop"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize(("steps", "batch", "lengths"), LENGTHS, ids=LENGTH_IDS)
@pytest.mark.parametrize(("cell", "proj"), CELLS, ids=CELL_IDS)
def test_fused_steps_match_the_reference(monkeypatch, cell, proj, steps, batch, lengths, reverse,
                                         dtype, whole_loop):
    _set_whole_loop(monkeypatch, whole_loop)
    calls = _counting(monkeypatch)
    _check(cell, proj, steps, batch, lengths, reverse, dtype)
    if steps > 1:  # a single step runs the reference's ops (function.run)
        forward, backward = sorted(_expected_functions(cell, proj, whole_loop), reverse=True)
        assert calls.keys() == {forward, backward}
        assert calls[forward] == calls[backward]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize(("steps", "batch", "lengths"), [LENGTHS[0], LENGTHS[1], LENGTHS[6]],
                         ids=["none", "unsorted", "long"])
@pytest.mark.parametrize(("cell", "proj"), CELLS, ids=CELL_IDS)
def test_the_aten_fallback_matches_the_reference(monkeypatch, cell, proj, steps, batch, lengths,
                                                 reverse, dtype):
    """Where no compiler is, the cells run the same formulas as ATen ops."""
    monkeypatch.setattr(fused, "steps", lambda dtype: None)
    _check(cell, proj, steps, batch, lengths, reverse, dtype)


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("steps", "batch", "lengths"),
                         [(4, 6, None), (5, 7, [5, 2, 5, 4, 1, 3, 5]), (3, 8, None), (3, 14, None)],
                         ids=["none", "lengths", "8-rows", "14-rows"])
def test_whole_loop_products_at_block_sizes(monkeypatch, steps, batch, lengths, dtype):
    """The whole loop's own GEMM in its register blocks (6, 4, 2 and 1 rows by a 64-column panel,
    32 in float64) and their remainders: H=70 gives the forward product 280 = 4*64 + 24 columns
    (8*32 + 24) over K = 70 and the backward's 70 = 64 + 6 (2*32 + 6) over K = 280; 6 and 7 rows
    are a block of 6 and one row left, fewer rows as sequences end; 8 rows two blocks of 4, 14 a
    block of 6 and two of 4."""
    _set_whole_loop(monkeypatch, True)
    calls = _counting(monkeypatch)
    for reverse in (False, True):
        _check("lstm", 0, steps, batch, lengths, reverse, dtype, hidden=70)
    assert calls.keys() == {"lstm_forward_loop", "lstm_backward_loop"}


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("k", "n"), [(70, 280), (280, 70), (5, 3), (1, 64), (3, 129)])
@pytest.mark.parametrize("view", ["transposed", "contiguous", "expanded"])
def test_pack_panels_lays_out_the_documented_panels(dtype, k, n, view):
    """Panels of C columns, each (K, C) row-major, then the N % C columns left, from any strided
    view: a weight's transpose (how the loops pass it), a row-major matrix, a broadcast row."""
    cols = fused.PANEL_COLS[dtype]
    source = torch.randn(n, k, dtype=dtype)
    b = {"transposed": source.t(), "contiguous": source.t().contiguous(),
         "expanded": source.t()[:1].expand(k, n)}[view]
    full = n // cols * cols
    expected = torch.cat([b[:, start:start + cols].reshape(-1) for start in range(0, full, cols)]
                         + [b[:, full:].reshape(-1)])
    assert torch.equal(fused.pack_panels(b), expected)


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", [None, [3, 1] * 35], ids=["padded", "lengths"])
def test_inference_runs_every_segment_as_a_whole_loop(monkeypatch, dtype, lengths):
    """Without a gradient the LSTM's segments run the whole loop beyond fused.whole_loop's bounds
    (70 rows, H=200: a weight of (800, 200)), not a product and a step call per step: one call per
    segment, outputs as the float64 reference's; up to lstm.INFERENCE_LOOP_MAX_WEIGHT."""
    inputs = recurrence_inputs("lstm", 3, 70, 200)
    assert not fused.whole_loop(70, inputs["w_hh"])
    lengths = None if lengths is None else torch.tensor(lengths)
    cast = {k: None if v is None else v.detach().to(dtype) for k, v in inputs.items()}
    calls = _counting(monkeypatch)
    with torch.no_grad():
        actual = _call(cpu, "lstm", "tanh", cast, lengths, False)
        expected = _call(reference, "lstm", "tanh", inputs, lengths, False)
    assert calls == {"lstm_forward_loop": 1 if lengths is None else 2}
    for index, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, f"output {index}")
    # Above lstm.INFERENCE_LOOP_MAX_WEIGHT (lowered here), a step call per step.
    monkeypatch.setattr(lstm, "INFERENCE_LOOP_MAX_WEIGHT", inputs["w_hh"].numel() - 1)
    calls.clear()
    with torch.no_grad():
        _call(cpu, "lstm", "tanh", cast, lengths, False)
    assert calls == {"lstm_forward": 3}


def test_the_whole_loop_rule():
    """Small batches with a small weight only: larger products run MKL's, per step."""
    small, large = torch.empty(4 * 64, 64), torch.empty(4 * 256, 256)
    assert fused.whole_loop(8, small) and fused.whole_loop(fused.LOOP_MAX_ROWS, small)
    assert not fused.whole_loop(fused.LOOP_MAX_ROWS + 1, small)
    assert not fused.whole_loop(8, large)


@needs_compiler
@pytest.mark.parametrize("whole_loop", [False, True], ids=["steps", "loop"])
@pytest.mark.parametrize(("cell", "proj"), CELLS, ids=CELL_IDS)
def test_strided_and_expanded_tensors(monkeypatch, cell, proj, whole_loop):
    """gx, h0 and c0 with non-unit strides in their rows, and an expanded upstream gradient (the
    gradient of .sum()): the fused steps read every tensor through row pointers."""
    _set_whole_loop(monkeypatch, whole_loop)
    calls = _counting(monkeypatch)
    inputs = recurrence_inputs(cell, 5, 3, 4, proj=proj)

    def strided(t):  # the same values, laid out column-major
        return None if t is None else t.detach().mT.contiguous().mT

    odd = {k: strided(v) if k in ("gx", "h0", "c0") else v for k, v in inputs.items()}
    assert odd["gx"].stride(-1) != 1
    results = []
    for module, values in ((reference, inputs), (cpu, odd)):
        leaves = {k: None if v is None else v.detach().clone().requires_grad_() for k, v in
                  values.items()}
        outputs = _call(module, cell, "tanh", leaves, None, False)
        sum(o.sum() for o in outputs).backward()
        results.append([*outputs, *(v.grad for v in leaves.values() if v is not None)])
    for index, (actual, expected) in enumerate(zip(*reversed(results))):
        assert_close(actual, expected, f"tensor {index}")
    expected = _expected_functions(cell, proj, whole_loop)
    per_call = 1 if "lstm_forward_loop" in expected else 5  # one call per segment, or per step
    assert calls.keys() == expected and sorted(calls.values()) == [per_call, per_call]


def test_rows_refuse_a_row_of_non_unit_stride():
    buffer = torch.zeros(4, 6)
    one_row = buffer.as_strided((1, 6), (99, 1))  # any row stride: only its first row is read
    assert fused.rows([buffer[1:3], one_row]) == ([buffer.data_ptr() + 6 * 4, buffer.data_ptr()],
                                                  [6, 99])
    with pytest.raises(ValueError, match="unit stride"):
        fused.rows([buffer.t()])


@needs_compiler
def test_built_once_into_the_cache_and_reused(fresh_load):
    assert fused.steps(torch.float32) is not None
    built = list(fresh_load.glob("fused_steps-*.so"))
    assert len(built) == 1 and not list(fresh_load.glob("*.tmp"))
    stamp = built[0].stat().st_mtime_ns
    fused._load.cache_clear()
    assert fused.steps(torch.float32) is not None
    assert built[0].stat().st_mtime_ns == stamp
    assert str(built[0]) in fused.status()


def test_switched_off_by_the_environment(fresh_load, monkeypatch):
    monkeypatch.setenv(fused.ENV_SWITCH, "0")
    assert fused.steps(torch.float32) is None
    assert "FASTRNN_CPU_FUSED=0" in fused.status()
    assert not list(fresh_load.iterdir())


@pytest.mark.skipif(shutil.which("false") is None, reason="no `false` program")
def test_a_failing_compiler_leaves_the_aten_steps(fresh_load, monkeypatch):
    monkeypatch.setenv("CC", shutil.which("false"))
    assert fused.steps(torch.float32) is None
    assert "the C compiler failed" in fused.status()
    assert not list(fresh_load.iterdir())
    # The recurrence still runs, as ATen ops.
    _check("lstm", 0, 4, 3, [4, 2, 1], False, torch.float64)


def test_no_compiler_leaves_the_aten_steps(fresh_load, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-fastrnn")
    assert fused.steps(torch.float64) is None
    assert fused.status().startswith("no C compiler found")


@needs_compiler
def test_cc_may_carry_words_of_its_own(fresh_load, monkeypatch):
    """$CC as in make: a compiler with options (or a wrapper such as ccache) before the flags."""
    compiler = fused._compiler()[0]
    monkeypatch.setenv("CC", f"{compiler} -DFASTRNN_CC_WORD")
    assert fused.steps(torch.float32) is not None
    assert fused.status().startswith(f"compiled by {compiler} -DFASTRNN_CC_WORD into ")
