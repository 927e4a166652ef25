"""Text to token ids: a basic English tokenizer and a vocabulary built from the training split."""

import re
from collections import Counter

PAD, UNK = "<pad>", "<unk>"
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# A word (letters/digits, with an inner apostrophe as in "don't") or any single punctuation mark.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_")


def tokenize(text):
    """Lowercase, drop the `<br />` tags IMDB reviews contain, split punctuation off words.

    >>> tokenize("Great film!<br /><br />Don't miss it.")
    ['great', 'film', '!', "don't", 'miss', 'it', '.']
    """
    return _TOKEN.findall(_BREAK.sub(" ", text.lower()))


class Vocab:
    """Token <-> id. Id 0 is `<pad>`, id 1 is `<unk>`, then tokens by descending count (ties
    alphabetical, so the vocabulary is reproducible).

    max_size: total size including the two specials (None for no limit); min_freq: drop rarer tokens.
    """

    def __init__(self, token_lists, max_size=None, min_freq=1):
        counts = Counter(token for tokens in token_lists for token in tokens)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            if max_size < 3:
                raise ValueError(f"vocabulary size must be at least 3, got {max_size}")
            ranked = ranked[: max_size - 2]
        self.itos = [PAD, UNK, *ranked]
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        self.pad_id, self.unk_id = 0, 1

    @classmethod
    def from_itos(cls, itos):
        """The vocabulary of a saved run: `itos` is its token list, specials first."""
        vocab = cls([])
        vocab.itos = list(itos)
        vocab.stoi = {token: index for index, token in enumerate(vocab.itos)}
        return vocab

    def __len__(self):
        return len(self.itos)

    def encode(self, tokens):
        unk = self.unk_id
        return [self.stoi.get(token, unk) for token in tokens]
