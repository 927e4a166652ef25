"""The IMDB Large Movie Review Dataset (aclImdb v1): find it, download it if missing, read it.

Accepted sources (all hold `aclImdb/{train,test}/{pos,neg}/*.txt`):
    a directory containing `aclImdb/` (or the `aclImdb` directory itself),
    the official `aclImdb_v1.tar.gz`, or any tar (.tar, .tar.gz, .tar.xz) with that layout.
Where to look: the `data_dir` argument, else $FASTRNN_DATA, else ~/.cache/fastrnn. `data_dir`
may also name an archive file directly. When nothing is found, the official archive is
downloaded into that directory (progress bar, sha256 check, atomic rename).
"""

import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from fastrnn.tasks.data.download import download

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ENV_VAR = "FASTRNN_DATA"
ARCHIVE_NAMES = ("aclImdb_v1.tar.gz", "aclImdb_v1.tar.xz", "aclImdb_v1.tar")
LABELS = {"neg": 0, "pos": 1}
SPLITS = ("train", "test")
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/[^/]+\.txt$")


class ImdbFormatError(ValueError):
    """A file or directory that does not hold the aclImdb layout."""


@dataclass
class Reviews:
    """One split: texts (N,) str and labels (N,) int (0 neg, 1 pos), in a fixed order."""

    texts: list
    labels: list

    def __len__(self):
        return len(self.texts)


def data_dir(explicit=None):
    """The data directory (or archive path): the argument, else $FASTRNN_DATA, else the cache."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path.home() / ".cache" / "fastrnn"


def _is_tree(path):
    return all((path / split / label).is_dir() for split in SPLITS for label in LABELS)


def find(root):
    """The aclImdb source under `root` (a directory or an archive path), or None."""
    root = Path(root)
    if root.is_file():
        return root
    for candidate in (root / "aclImdb", root):
        if _is_tree(candidate):
            return candidate
    for name in ARCHIVE_NAMES:
        if (root / name).is_file():
            return root / name
    return None


def locate(explicit=None, *, url=URL, sha256=SHA256, quiet=False):
    """Find the dataset, downloading the official archive into the data directory if missing."""
    root = data_dir(explicit)
    found = find(root)
    if found is not None:
        return found
    if root.suffix in (".gz", ".xz", ".tar", ".tgz"):
        raise FileNotFoundError(f"IMDB archive {root} does not exist")
    if not quiet:
        print(f"IMDB not found in {root}; downloading {url}", flush=True)
    return download(url, root / ARCHIVE_NAMES[0], sha256, quiet=quiet)


def _collect(items):
    """items: iterable of (split, label name, sort key, text) -> {split: Reviews}."""
    rows = {split: [] for split in SPLITS}
    for split, label, key, text in items:
        rows[split].append((label, key, text))
    result = {}
    for split, entries in rows.items():
        entries.sort()   # archive order varies between tools; sort for reproducibility
        result[split] = Reviews([t for _, _, t in entries], [LABELS[lbl] for lbl, _, _ in entries])
    return result


def _read_tree(root):
    for split in SPLITS:
        for label in LABELS:
            for path in (root / split / label).glob("*.txt"):
                yield split, label, path.name, path.read_text(encoding="utf-8", errors="replace")


def _read_archive(path):
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.ReadError, EOFError, OSError) as error:
        raise ImdbFormatError(f"{path} is not a readable tar archive ({error})") from error
    with archive:
        try:
            for member in archive:
                match = _MEMBER.search(member.name)
                if match and member.isfile():
                    text = archive.extractfile(member).read().decode("utf-8", errors="replace")
                    yield match.group(1), match.group(2), member.name, text
        except (tarfile.TarError, EOFError, OSError) as error:
            raise ImdbFormatError(f"{path} is truncated or corrupt ({error})") from error


def load(source):
    """Read every review of `source` (directory or archive) -> {'train': Reviews, 'test': Reviews}.

    Raises ImdbFormatError if the source lacks any of aclImdb/{train,test}/{pos,neg}/*.txt.
    """
    source = Path(source)
    if source.is_dir():
        tree = source / "aclImdb" if _is_tree(source / "aclImdb") else source
        if not _is_tree(tree):
            raise ImdbFormatError(f"{source} does not have the aclImdb layout: expected "
                                  "aclImdb/{train,test}/{pos,neg}/ directories")
        items = _read_tree(tree)
    elif source.is_file():
        items = _read_archive(source)
    else:
        raise FileNotFoundError(f"IMDB source {source} does not exist")
    splits = _collect(items)
    for split, reviews in splits.items():
        for name, label in LABELS.items():
            if label not in reviews.labels:
                raise ImdbFormatError(
                    f"{source} does not have the aclImdb layout: no files match "
                    f"aclImdb/{split}/{name}/*.txt")
    return splits
