"""The examples in the public docstrings run, and print what they say (doctest).

The examples may use `torch` and `fastrnn` without importing them; they show the default backend
choice, so FASTRNN_BACKEND is cleared for the run.
"""

import doctest
import importlib

import pytest
import torch

import fastrnn
from fastrnn import backends

PUBLIC_MODULES = ("fastrnn", "fastrnn.modules", "fastrnn.functional", "fastrnn.backends",
                  "fastrnn.convert", "fastrnn.explanation")


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in doctest.DocTestFinder().find(module, extraglobs={"torch": torch, "fastrnn": fastrnn}):
        runner.run(test, out=report.append)
    assert runner.tries > 0, f"{name} has no docstring example"
    assert runner.failures == 0, "".join(report)
