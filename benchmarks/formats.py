"""The number formats of the printed tables: one rule per kind of number, so a column never mixes
'6.184', '1.07e+03' and '965..1.07e+03'.

    times      3 significant digits, never an exponent: 0.0123, 6.18, 20.1, 238, 1017
    counts     3 significant digits with k/M/G: 950, 5.88k, 372k, 1.03M
    speedups   two decimals and an 'x': 0.32x, 1.00x, 12.40x (below 0.1: 0.0362x)
    errors     one digit and an exponent: 6e-07 (relative RMS errors span many decades)
    shares     a whole percent: 7%

A missing value (None) prints as '-' in every format.
"""

import math
import textwrap

MISSING = "-"


def sig3(value):
    """3 significant digits without an exponent; values of 1000 and more print as whole numbers."""
    if value is None:
        return MISSING
    if abs(value) < 100:
        value = float(f"{value:.3g}")  # round first: 99.96 is '100', not '100.0'
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    decimals = 2 - math.floor(math.log10(abs(value)))
    return f"{value:.{decimals}f}"


def si(value):
    """1234567 -> '1.23M': counts and throughputs, 3 significant digits."""
    if value is None:
        return MISSING
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return sig3(value / scale) + suffix
    return f"{value:.0f}"


def speedup(value):
    """Two decimals; below 0.1 three significant digits, so a 300x slower loop is not '0.00x'."""
    if value is None:
        return MISSING
    return f"{value:.2f}x" if abs(value) >= 0.095 else f"{sig3(value)}x"


def error(value):
    return MISSING if value is None else f"{value:.0e}"


def share(value):
    return MISSING if value is None else f"{100 * value:.0f}%"


def mib(value):
    return MISSING if value is None else sig3(value / 2**20)


def geomean(values):
    """Geometric mean of positive numbers (speedups and ratios multiply, so they average this way);
    None for an empty list."""
    values = list(values)
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def wrap(text, width, indent="  "):
    """`text` as lines of at most `width` characters, continuation lines indented."""
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False,
                         break_long_words=True) or [""]
