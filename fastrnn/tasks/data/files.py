"""Reading the user's own files: CSV/TSV tables and FASTA, with errors that name the line.

A table's first line is its header. The delimiter is a tab for .tsv/.tab files, otherwise the one
of comma, tab and semicolon that the first line holds most of. FASTA is recognised by its suffix
(.fa, .fasta, ...) or a first non-blank line starting with '>'. Files ending in .gz are read
through gzip. Every problem is a FileFormatError (a ValueError) with one line: the file, the
line number where there is one, and what is wrong.
"""

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path


class FileFormatError(ValueError):
    """A data file that cannot be read as the task needs it; the message names file and line."""


def where(path, line=None):
    """'FILE' or 'FILE, line N': the prefix of every message about a file."""
    return f"{path}, line {line}" if line is not None else f"{path}"


def read_text(path):
    """The file's text (gzip-decompressed for .gz). FileNotFoundError / FileFormatError."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    if path.is_dir():
        raise FileFormatError(f"{path} is a directory; --data takes a file")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise FileFormatError(f"{path} is not a readable gzip file ({error})") from error
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise FileFormatError(f"{where(path, line)}: not UTF-8 text") from error
    if not text.strip():
        raise FileFormatError(f"{path} is empty")
    return text


FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".ffn")


def is_fasta(text, path=None):
    """True for a FASTA suffix (before any .gz) or a first non-blank line starting with '>'."""
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"] if path else []
    return bool(suffixes) and suffixes[-1] in FASTA_SUFFIXES or text.lstrip().startswith(">")


@dataclass
class Table:
    """A table read from a file: column names, rows (dicts name -> str), and each row's line
    number in the file (1 is the header)."""

    path: Path
    columns: list
    rows: list
    lines: list

    def column(self, name, option):
        """All values of column `name`; FileFormatError listing the columns when it is missing.

        option: the setting that picks another column, for the message."""
        if name not in self.columns:
            raise FileFormatError(f"{self.path}: no column {name!r} (columns: "
                                  f"{', '.join(self.columns)}); choose one with "
                                  f"--set {option}=NAME")
        return [row[name] for row in self.rows]

    def optional(self, name):
        """Column `name` if the table has one, else None."""
        return [row[name] for row in self.rows] if name in self.columns else None


def _delimiter(path, header_line):
    """Tab for .tsv/.tab; otherwise whichever of comma, tab and semicolon the first line has most
    of (comma on a tie: a one-column file has none of them)."""
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in (".tsv", ".tab"):
        return "\t"
    return max((",", "\t", ";"), key=header_line.count)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_table(path, text=None, *, headerless_numbers=False):
    """Read a CSV/TSV file with a header line -> Table. Blank lines are skipped.

    headerless_numbers: a first line of numbers only is data, not a header, and the columns are
    named '1', '2', ... (series files often have no header).
    Raises FileFormatError for an empty file, a header without rows, a duplicate or empty column
    name, or a row whose number of fields differs from the header's.
    """
    text = read_text(path) if text is None else text
    header_line = text.lstrip("\r\n").split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(path, header_line))
    columns, rows, lines, end = None, [], [], 0
    try:
        for fields in reader:
            line, end = end + 1, reader.line_num   # a quoted field may span lines
            if not fields or all(not f.strip() for f in fields):
                continue
            if columns is None:
                columns = [f.strip() for f in fields]
                if headerless_numbers and all(_is_number(f) for f in columns):
                    columns = [str(k) for k in range(1, len(fields) + 1)]
                    rows.append(dict(zip(columns, (f.strip() for f in fields))))
                    lines.append(line)
                    continue
                _check_header(path, line, columns)
                continue
            if len(fields) != len(columns):
                raise FileFormatError(f"{where(path, line)}: {len(fields)} fields where the header "
                                      f"has {len(columns)} ({', '.join(columns)})")
            rows.append(dict(zip(columns, (f.strip() for f in fields))))
            lines.append(line)
    except csv.Error as error:
        raise FileFormatError(f"{where(path, reader.line_num)}: {error}") from error
    if not rows:
        raise FileFormatError(f"{path} has a header line but no rows")
    return Table(Path(path), columns, rows, lines)


def _check_header(path, line, columns):
    if any(not name for name in columns):
        raise FileFormatError(f"{where(path, line)}: the header has an empty column name "
                              f"({', '.join(columns)})")
    seen = set()
    for name in columns:
        if name in seen:
            raise FileFormatError(f"{where(path, line)}: column {name!r} appears twice")
        seen.add(name)


@dataclass
class FastaRecord:
    """One FASTA record: the header (without '>'), the sequence (lines joined, spaces removed),
    and the header's line number."""

    header: str
    sequence: str
    line: int

    def fields(self):
        """(name, label or None, {key: value}) from the header.

        The header is split at whitespace and '|'. `key=value` parts go into the dict (label=...
        and split=... among them); of the other parts the first is the name and, when there are
        two or more, the last is the label:
            >seq1 EI            name seq1, label EI
            >seq1|chr2|EI       name seq1, label EI
            >seq1 label=EI split=test
        """
        parts = self.header.replace("|", " ").split()
        pairs = dict(p.split("=", 1) for p in parts if "=" in p)
        plain = [p for p in parts if "=" not in p]
        name = plain[0] if plain else f"line{self.line}"
        label = pairs.get("label", plain[-1] if len(plain) >= 2 else None)
        return name, label, pairs


def read_fasta(path, text=None):
    """Read a FASTA file -> list of FastaRecord. FileFormatError for text before the first header
    or a record without a sequence."""
    text = read_text(path) if text is None else text
    records = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            if records and not records[-1].sequence:
                _empty(path, records[-1])
            records.append(FastaRecord(line[1:].strip(), "", number))
        elif not records:
            raise FileFormatError(f"{where(path, number)}: sequence text before the first '>' "
                                  "header")
        else:
            records[-1].sequence += "".join(line.split())
    if records and not records[-1].sequence:
        _empty(path, records[-1])
    if not records:
        raise FileFormatError(f"{path} has no FASTA records")
    return records


def _empty(path, record):
    raise FileFormatError(f"{where(path, record.line)}: FASTA record {record.header!r} has no "
                          "sequence")
