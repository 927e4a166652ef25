"""Clear errors and warnings where a PyTorch tool would otherwise fail obscurely or silently.

- torch.ao.quantization swaps modules by exact type, so its flows pass over fastrnn layers
  without a word; the one thing they do to every module is assign its `qconfig`. That assignment
  warns here, naming fastrnn.quantize_dynamic.
- torch.jit.script cannot compile fastrnn's Python (backend dispatch, dataclasses) and used to fail
  with an internal message; TorchScript is deprecated upstream. It calls `__prepare_scriptable__`
  first, which raises here, naming torch.compile and torch.export.
"""

import warnings


class EcosystemGuards:
    """Mixin for the fastrnn modules (see the module docstring)."""

    @property
    def qconfig(self):
        return self.__dict__.get("_qconfig")

    @qconfig.setter
    def qconfig(self, value):
        warnings.warn(
            f"torch.ao.quantization leaves fastrnn.{type(self).__name__} in floating point: it "
            f"swaps torch.nn types only. fastrnn.quantize_dynamic(model) quantizes fastrnn "
            f"layers (int8 weights through torch's dynamic quantized LSTM/GRU/cells).",
            UserWarning, stacklevel=2)
        self.__dict__["_qconfig"] = value

    @qconfig.deleter
    def qconfig(self):
        self.__dict__.pop("_qconfig", None)

    def __prepare_scriptable__(self):
        raise RuntimeError(
            f"fastrnn.{type(self).__name__} cannot be compiled with torch.jit.script (TorchScript "
            f"is deprecated upstream). Use torch.compile(model) to compile it, or "
            f"torch.export.export(model, args) to export it; fastrnn.convert(model, to='torch') "
            f"gives torch.nn layers with the same weights if TorchScript is a must.")
