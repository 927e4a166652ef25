"""Progress bars: tqdm's when it is installed (the `bench` extra), none otherwise.

A bar is a convenience, never a reason for a run to fail, so a missing tqdm silently gives a
bar-less object with the few methods the tasks call.
"""

from fastrnn.tasks.deps import MissingDependency, require


class _NoBar:
    """Stands in for tqdm: iterates, counts nothing, prints nothing."""

    def __init__(self, iterable=None, **_):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def update(self, *_):
        pass

    def set_postfix(self, *_, **__):
        pass

    def set_description(self, *_, **__):
        pass


def bar(iterable=None, **options):
    """tqdm(iterable, **options) if tqdm is installed and the bar is not disabled, else a no-op."""
    if options.get("disable"):
        return _NoBar(iterable)
    try:
        tqdm = require("tqdm", "progress bars").tqdm
    except MissingDependency:
        return _NoBar(iterable)
    return tqdm(iterable, **options)
