"""Optional dependencies of the tasks, imported where they are used and named when missing.

`fastrnn` itself needs only torch and numpy. The tasks' progress bars (tqdm) and figures
(matplotlib) come with an extra; a missing one is a one-line error that names the extra to
install, raised before any training starts, instead of an import traceback.
"""

import importlib

# module name -> the pyproject.toml extra that installs it.
EXTRAS = {"matplotlib": "bench", "tqdm": "bench"}


class MissingDependency(ImportError):
    """An optional dependency is not installed; the message says how to install it."""


def require(module, purpose):
    """Import and return `module` (a top-level name in EXTRAS); MissingDependency otherwise.

    purpose: what needs it, for the message ("the plots", "progress bars").
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = EXTRAS[module]
        raise MissingDependency(
            f"{purpose} need {module}, which is not installed: "
            f"pip install 'fastrnn[{extra}]' (or pip install {module})") from error
