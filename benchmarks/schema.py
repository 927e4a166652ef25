"""The schema of a result file, as a JSON-Schema subset checked by the small validator below.

Supported keywords: type (a name or a list of names), required, properties, items, enum, minimum,
additionalProperties (bool). That is all the result format needs, and it keeps the harness free of
a jsonschema dependency; the dict is still valid JSON Schema for tools that have one.
"""

import math

SCHEMA_ID = "fastrnn.bench/2"
# /2 added the row keys below; `upgrade` fills them with null in /1 files (never measured there).
PREVIOUS_IDS = ("fastrnn.bench/1",)
ADDED_ROW_KEYS = ("form", "speedup_vs_torch_fp16", "speedup_vs_torch_bf16")

_NUMBER = {"type": "number"}
_OPT_NUMBER = {"type": ["number", "null"]}
_OPT_INT = {"type": ["integer", "null"], "minimum": 0}
_STR = {"type": "string"}
_OPT_STR = {"type": ["string", "null"]}
_STATUS = {"enum": ["ok", "parity_failed", "unavailable", "error"]}

_PARITY = {
    "type": ["object", "null"],
    "required": ["ok", "T", "B", "worst", "worst_rel_rms", "failed", "tensors"],
    "properties": {
        "ok": {"type": "boolean"},
        "T": {"type": "integer", "minimum": 1},
        "B": {"type": "integer", "minimum": 1},
        "worst": _STR,
        "worst_rel_rms": _NUMBER,
        "failed": {"type": "array", "items": _STR},
        "tensors": {"type": "array", "items": {
            "type": "object", "required": ["name", "rel_rms", "max_err", "ok"],
            "properties": {"name": _STR, "rel_rms": _NUMBER, "max_err": _NUMBER,
                           "ok": {"type": "boolean"}}}},
    },
}

ROW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["grid", "case", "cell", "T", "B", "I", "H", "layers", "bidirectional", "packed",
                 "dtype", "sweeps", "tokens", "input_projection_included", "provider", "mode",
                 "device", "status", "reason", "parity", "median_ms", "p20_ms", "p80_ms",
                 "repeats", "timer", "us_per_step", "tokens_per_s", "peak_mem_bytes",
                 "speedup_vs_torch", *ADDED_ROW_KEYS],
    "properties": {
        "grid": _STR, "case": _STR, "cell": {"enum": ["LSTM", "GRU", "RNN"]},
        "T": {"type": "integer", "minimum": 1}, "B": {"type": "integer", "minimum": 1},
        "I": {"type": "integer", "minimum": 1}, "H": {"type": "integer", "minimum": 1},
        "layers": {"type": "integer", "minimum": 1}, "bidirectional": {"type": "boolean"},
        "packed": {"type": "boolean"},
        "dtype": {"enum": ["float32", "float16", "bfloat16", "float64"]},
        "sweeps": {"type": "array", "items": _STR}, "tokens": {"type": "integer", "minimum": 1},
        "input_projection_included": {"type": "boolean"},
        "provider": _STR, "mode": {"enum": ["infer", "fwd", "fwdbwd"]}, "device": _STR,
        "status": _STATUS, "reason": _OPT_STR, "parity": _PARITY,
        "median_ms": _OPT_NUMBER, "p20_ms": _OPT_NUMBER, "p80_ms": _OPT_NUMBER,
        "repeats": _OPT_INT, "timer": _OPT_STR, "us_per_step": _OPT_NUMBER,
        "tokens_per_s": _OPT_NUMBER, "peak_mem_bytes": _OPT_INT, "speedup_vs_torch": _OPT_NUMBER,
        # The kernel form(s) fastrnn.kernels.record_forms saw in one untimed call ('+'-joined when
        # the calls of one module differ); null for providers that do not run the Triton kernels.
        "form": _OPT_STR,
        # Speedups against torch.nn in a fixed dtype (providers torch-fp16 / torch-bf16, or torch
        # itself on a case of that dtype): cuDNN runs its persistent kernels only in fp16.
        "speedup_vs_torch_fp16": _OPT_NUMBER, "speedup_vs_torch_bf16": _OPT_NUMBER,
    },
}

_EPOCH = {"type": "object", "required": ["epoch", "loss", "metric", "seconds", "tokens_per_s"],
          "properties": {"epoch": {"type": "integer", "minimum": 1}, "loss": _NUMBER,
                         "metric": _NUMBER, "seconds": _NUMBER, "tokens_per_s": _NUMBER}}

TASK_ROW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["grid", "task", "backend", "device", "size", "status", "reason",
                 "resolved_backend", "metric", "final_metric", "higher_is_better", "epochs",
                 "seconds_per_epoch", "tokens_per_s", "total_seconds", "speedup_vs_torch"],
    "properties": {
        "grid": {"enum": ["tasks"]}, "task": _STR, "backend": _STR, "device": _STR, "size": _STR,
        "status": _STATUS, "reason": _OPT_STR, "resolved_backend": _OPT_STR, "metric": _OPT_STR,
        "final_metric": _OPT_NUMBER, "higher_is_better": {"type": ["boolean", "null"]},
        "epochs": {"type": "array", "items": _EPOCH}, "seconds_per_epoch": _OPT_NUMBER,
        "tokens_per_s": _OPT_NUMBER, "total_seconds": _OPT_NUMBER,
        "speedup_vs_torch": _OPT_NUMBER,
    },
}

# The env block's keys are fixed by fastrnn.environment.collect(); values may be null.
ENV_KEYS = ["fastrnn", "git_commit", "git_dirty", "torch", "triton", "numpy", "cuda", "cudnn",
            "gpu_name", "compute_capability", "driver", "cpu_model", "threads", "tf32_matmul",
            "tf32_cudnn"]

RESULT = {
    "type": "object",
    "required": ["schema", "created", "command", "device", "device_slug", "grids", "settings",
                 "env", "providers", "rows", "tasks"],
    "properties": {
        "schema": {"enum": [SCHEMA_ID]},
        "created": _STR, "command": _STR, "device": {"enum": ["cpu", "cuda"]},
        "device_slug": _STR, "grids": {"type": "array", "items": _STR},
        "settings": {"type": "object", "required": ["threads", "tf32", "parity_steps"]},
        "env": {"type": "object", "required": ENV_KEYS},
        "providers": {"type": "object"},
        "rows": {"type": "array", "items": ROW},
        "tasks": {"type": "array", "items": TASK_ROW},
    },
}

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    # JSON has no NaN/Inf: a non-finite number would not survive a round trip.
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    and math.isfinite(v),
    "null": lambda v: v is None,
}


def upgrade(result):
    """Bring a result of an earlier schema version up to SCHEMA_ID in place (and return it): rows
    get the keys added since, as null. Anything else is left for `validate` to judge."""
    if isinstance(result, dict) and result.get("schema") in PREVIOUS_IDS:
        for row in result.get("rows") or []:
            if isinstance(row, dict):
                for key in ADDED_ROW_KEYS:
                    row.setdefault(key, None)
        result["schema"] = SCHEMA_ID
    return result


def errors(instance, schema=RESULT, path="$"):
    """Every violation of `schema` by `instance`, as 'path: message' strings (empty when valid)."""
    found = []
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](instance) for t in types):
            return [f"{path}: expected {' or '.join(types)}, got {instance!r:.80}"]
    if "enum" in schema and instance not in schema["enum"]:
        found.append(f"{path}: {instance!r} is not one of {schema['enum']}")
    if "minimum" in schema and isinstance(instance, (int, float)) and (
        instance < schema["minimum"]
    ):
        found.append(f"{path}: {instance} < minimum {schema['minimum']}")
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                found.append(f"{path}: missing required key {key!r}")
        properties = schema.get("properties", {})
        for key, value in instance.items():
            if key in properties:
                found += errors(value, properties[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                found.append(f"{path}: unexpected key {key!r}")
    if isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            found += errors(item, schema["items"], f"{path}[{index}]")
    return found


def validate(result):
    """Raise ValueError listing (up to 20) violations when `result` does not follow RESULT."""
    found = errors(result)
    if found:
        more = f"\n... and {len(found) - 20} more" if len(found) > 20 else ""
        raise ValueError("result does not follow the schema:\n" + "\n".join(found[:20]) + more)
