"""DNA/RNA letters to codes, IUPAC ambiguity codes included, and the base mixture of each code.

Codes 0-3 are A, C, G, T (so plain DNA encodes as before); 4-14 are the IUPAC ambiguity codes;
PAD (15) pads sequences of different lengths. A code stands for the average of the bases it can
be: `MIX[code]` is a (4,) vector of base probabilities (N = a quarter each, R = half A half G),
and a model embeds a code as that mixture of its base embeddings. U (RNA) reads as T; letters
are case-insensitive (soft-masked lowercase is common in genome files).
"""

import torch

BASES = "ACGT"
IUPAC = {"A": "A", "C": "C", "G": "G", "T": "T",
         "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
         "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT"}
CODES = "".join(IUPAC)
PAD = len(CODES)
_INDEX = {letter: k for k, letter in enumerate(CODES)} | {"U": CODES.index("T")}


def _mixtures():
    mix = torch.zeros(len(CODES) + 1, len(BASES))
    for k, letter in enumerate(CODES):
        for base in IUPAC[letter]:
            mix[k, BASES.index(base)] = 1.0 / len(IUPAC[letter])
    return mix   # the PAD row stays zero: padding contributes nothing


MIX = _mixtures()   # (16, 4)


def encode(text):
    """A sequence string -> codes (T,) int64. ValueError naming the first letter that is not a
    nucleotide or IUPAC code, and its position (1-based).

    >>> encode("ACgtN").tolist()
    [0, 1, 2, 3, 14]
    """
    codes = []
    for position, letter in enumerate(text.upper(), 1):
        code = _INDEX.get(letter)
        if code is None:
            raise ValueError(f"letter {letter!r} at position {position} is not a nucleotide or "
                             f"IUPAC code ({' '.join(CODES)} U)")
        codes.append(code)
    return torch.tensor(codes, dtype=torch.int64)


def decode(codes):
    """Codes (T,) -> the string (PAD dropped)."""
    return "".join(CODES[c] for c in codes.tolist() if c != PAD)
