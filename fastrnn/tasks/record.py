"""The JSON record of a run: how it is built, checked against its schema, and written."""

import json
import math
import time

SCHEMA = "fastrnn.tasks.run/1"

# key -> type(s) of every field a record must carry; nested dicts are described the same way.
_EPOCH_FIELDS = {"epoch": int, "loss": float, "metric": float, "seconds": float,
                 "tokens_per_s": float}
_FIELDS = {
    "schema": str,
    "task": str,
    "config": dict,
    "backend": dict,
    "environment": dict,
    "seed": int,
    "epochs": list,
    "final": dict,
    "total_seconds": float,
    "created": str,
    "plots": list,
}
_FINAL_FIELDS = {"metric": str, "value": float, "higher_is_better": bool, "extras": dict}
_BACKEND_FIELDS = {"requested": str, "resolved": str, "reason": str}


def build(task, config, backend, environment, seed, result, total_seconds):
    """Assemble the record of one run (see `validate` for the schema)."""
    return {
        "schema": SCHEMA,
        "task": task.name,
        "config": config,
        "backend": backend,
        "environment": environment,
        "seed": seed,
        "epochs": result.epochs,
        "final": {"metric": result.metric or task.metric, "value": float(result.value),
                  "higher_is_better": task.higher_is_better, "extras": result.extras},
        "total_seconds": float(total_seconds),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plots": [str(p) for p in result.plots],
    }


def _check_fields(obj, fields, where):
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object, got {type(obj).__name__}")
    for key, kind in fields.items():
        if key not in obj:
            raise ValueError(f"{where}: missing field {key!r}")
        value = obj[key]
        # ints are valid floats; bools are not numbers here.
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              if kind is float else isinstance(value, kind)
              and not (kind is int and isinstance(value, bool)))
        if not ok:
            raise ValueError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
        if kind is float and not math.isfinite(value):
            raise ValueError(f"{where}.{key}: not finite ({value!r})")


def validate(record):
    """Raise ValueError naming the first problem if `record` does not follow the schema."""
    _check_fields(record, _FIELDS, "record")
    if record["schema"] != SCHEMA:
        raise ValueError(f"record.schema: expected {SCHEMA!r}, got {record['schema']!r}")
    _check_fields(record["final"], _FINAL_FIELDS, "record.final")
    _check_fields(record["backend"], _BACKEND_FIELDS, "record.backend")
    if not record["epochs"]:
        raise ValueError("record.epochs: empty")
    for i, row in enumerate(record["epochs"]):
        _check_fields(row, _EPOCH_FIELDS, f"record.epochs[{i}]")
    json.dumps(record)  # raises TypeError if anything is not JSON-able
    return record


def write(record, path):
    """Validate and write `record` as indented JSON to `path`."""
    validate(record)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
