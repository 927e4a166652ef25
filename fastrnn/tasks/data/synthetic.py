"""A small generated archive in the aclImdb layout, for tests and quick benchmark runs.

Reviews are filler words with a few sentiment words whose balance decides the label, plus the
`<br />` tags and punctuation real reviews have, so the whole pipeline (tokenizer, vocabulary,
packing) is exercised and a model can learn the task from a few hundred examples.
"""

import io
import random
import tarfile
from pathlib import Path

POSITIVE = ("great", "wonderful", "superb", "loved", "brilliant", "moving")
NEGATIVE = ("awful", "boring", "terrible", "hated", "dull", "mess")
FILLER = ("the", "film", "movie", "plot", "actor", "scene", "story", "was", "and", "it", "a",
          "director", "music", "ending", "characters", "this", "of", "in")


def review(label, rng):
    """One review text with sentiment `label` (1 pos, 0 neg); length varies from 5 to ~80 words."""
    words = [rng.choice(FILLER) for _ in range(rng.randint(4, 70))]
    strong, weak = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
    for _ in range(rng.randint(2, 5)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(strong))
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words) + 1), rng.choice(weak))
    words[0] = words[0].capitalize()
    if rng.random() < 0.5:
        cut = rng.randrange(1, len(words))
        return f"{' '.join(words[:cut])}.<br /><br />{' '.join(words[cut:])}!"
    return f"{' '.join(words)}, really."


def reviews(n_per_class, seed=0):
    """{(split, label name): [(file name, text), ...]} for train/test x pos/neg."""
    rng = random.Random(seed)
    files = {}
    for split in ("train", "test"):
        for label, name in ((1, "pos"), (0, "neg")):
            ratings = (7, 8, 9, 10) if label else (1, 2, 3, 4)
            files[(split, name)] = [(f"{i}_{rng.choice(ratings)}.txt", review(label, rng))
                                    for i in range(n_per_class)]
    return files


def write_archive(path, n_per_class=100, seed=0, prefix="aclImdb"):
    """Write a tar (compression from the suffix: .tar, .tar.gz, .tar.xz) holding
    `{prefix}/{train,test}/{pos,neg}/<id>_<rating>.txt`; returns the path."""
    path = Path(path)
    mode = {".gz": "w:gz", ".xz": "w:xz"}.get(path.suffix, "w")
    with tarfile.open(path, mode) as archive:
        for (split, label), entries in reviews(n_per_class, seed).items():
            for name, text in entries:
                data = text.encode("utf-8")
                info = tarfile.TarInfo(f"{prefix}/{split}/{label}/{name}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def write_tree(root, n_per_class=100, seed=0):
    """The same reviews as a directory tree root/aclImdb/...; returns root/aclImdb."""
    base = Path(root) / "aclImdb"
    for (split, label), entries in reviews(n_per_class, seed).items():
        folder = base / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in entries:
            (folder / name).write_text(text, encoding="utf-8")
    return base
