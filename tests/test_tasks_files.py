"""Reading the user's files: every format round-trips, and every malformed file is a one-line
error that names the file, the line and the problem."""

import gzip

import pytest
import torch

from fastrnn.tasks.data import examples, nucleotides
from fastrnn.tasks.data.files import FileFormatError, read_fasta, read_table
from fastrnn.tasks.data.labelled import class_names, read_labelled, split_rows
from fastrnn.tasks.data.series import chronological, naive_errors, read_series

SEQUENCES = ["ACGTACGTAA", "CCGGTTAANN", "acgtRYSWKM", "TTTTUUUUGG", "GATTACAGAT", "AAAACCCCGG"]
LABELS = ["EI", "IE", "N", "N", "EI", "IE"]


def test_csv_tsv_and_fasta_round_trip(tmp_path):
    ids = [f"s{k}" for k in range(len(SEQUENCES))]
    csv_path = examples.write_csv(tmp_path / "d.csv", ["id", "sequence", "label"],
                                  zip(ids, SEQUENCES, LABELS))
    tsv_path = examples.write_csv(tmp_path / "d.tsv", ["sequence", "label"], zip(SEQUENCES, LABELS))
    fasta_path = examples.write_fasta(tmp_path / "d.fa", ids, SEQUENCES, LABELS, width=4)
    for path in (csv_path, tsv_path, fasta_path):
        rows = read_labelled(path, "sequence", "label", "split", fasta=True)
        assert rows.values == SEQUENCES and rows.labels == LABELS and rows.splits is None
    assert read_labelled(csv_path, "sequence", "label", "split").ids == ids
    assert read_labelled(fasta_path, "sequence", "label", "split", fasta=True).ids == ids
    assert read_labelled(tsv_path, "sequence", "label", "split").lines == [2, 3, 4, 5, 6, 7]


def test_gzip_semicolons_quotes_and_headers(tmp_path):
    text = 'text;label\n"one; two\nthree";pos\n\nfour;neg\n'
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    table = read_table(path)
    assert table.columns == ["text", "label"]
    assert [row["text"] for row in table.rows] == ["one; two\nthree", "four"]
    assert table.lines == [2, 5]   # the quoted field spans lines 2-3; line 4 is blank


def test_fasta_headers_give_name_label_and_split(tmp_path):
    path = tmp_path / "h.fasta"
    path.write_text(">a EI\nAC\nGT\n>b|chr1|IE\nAAAA\n>c x=1 label=N split=test\nCC GG\n")
    records = read_fasta(path)
    assert [r.sequence for r in records] == ["ACGT", "AAAA", "CCGG"]
    assert [r.fields()[:2] for r in records] == [("a", "EI"), ("b", "IE"), ("c", "N")]
    assert records[2].fields()[2] == {"x": "1", "label": "N", "split": "test"}


def test_iupac_codes_encode_as_the_average_of_their_bases():
    codes = nucleotides.encode("ACGTUNRacgt")
    assert codes[:4].tolist() == [0, 1, 2, 3] and codes[4] == 3 and codes[7:].tolist() == [0, 1, 2, 3]
    mix = nucleotides.MIX[codes]
    assert torch.equal(mix[5], torch.full((4,), 0.25))            # N
    assert torch.equal(mix[6], torch.tensor([0.5, 0.0, 0.5, 0.0]))  # R = A or G
    assert torch.allclose(nucleotides.MIX[: nucleotides.PAD].sum(dim=1), torch.ones(15))
    assert nucleotides.MIX[nucleotides.PAD].sum() == 0


def test_split_is_stratified_and_seeded_unless_the_file_says(tmp_path):
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    path = examples.write_csv(tmp_path / "s.csv", ["sequence", "label"],
                              (("ACGT", lbl) for lbl in labels))
    rows = read_labelled(path, "sequence", "label", "split")
    classes = class_names(rows.labels)
    parts = split_rows(rows, classes, val_fraction=0.1, test_fraction=0.2,
                       generator=torch.Generator().manual_seed(0))
    assert sorted(parts["train"] + parts["val"] + parts["test"]) == list(range(100))
    for name, share in (("val", 0.1), ("test", 0.2)):
        counts = [sum(labels[k] == c for k in parts[name]) for c in classes]
        assert counts == [round(60 * share), round(30 * share), round(10 * share)]
    again = split_rows(rows, classes, val_fraction=0.1, test_fraction=0.2,
                       generator=torch.Generator().manual_seed(0))
    other = split_rows(rows, classes, val_fraction=0.1, test_fraction=0.2,
                       generator=torch.Generator().manual_seed(1))
    assert again == parts and other != parts
    given = examples.write_csv(tmp_path / "g.csv", ["sequence", "label", "split"],
                               [("AC", "x", "train"), ("AG", "y", "Train"), ("AT", "x", "test"),
                                ("CC", "y", "validation"), ("GG", "x", "train")])
    rows = read_labelled(given, "sequence", "label", "split")
    assert split_rows(rows, ["x", "y"], val_fraction=0.1, test_fraction=0.2, generator=None) == {
        "train": [0, 1, 4], "val": [3], "test": [2]}


def test_class_names_sort_numbers_as_numbers():
    assert class_names(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert class_names(["pos", "neg"]) == ["neg", "pos"]


def test_series_columns_headerless_files_and_chronological_split(tmp_path):
    path = examples.write_csv(tmp_path / "s.csv", ["month", "value", "other"],
                              ((f"m{k}", k * 1.5, "x") for k in range(40)))
    series = read_series(path)
    assert series.column == "value" and series.values[3] == 4.5 and series.lines[0] == 2
    bare = tmp_path / "bare.txt"
    bare.write_text("\n".join(str(v) for v in range(20)) + "\n")
    assert read_series(bare).values.tolist() == [float(v) for v in range(20)]
    many = tmp_path / "many.csv"
    many.write_text("1;2.5;3\n2;3.5;4\n")
    assert read_series(many, "2").values.tolist() == [2.5, 3.5]
    parts = chronological(100, 10, 0.1, 0.2, path)
    assert (parts["train"][0], parts["train"][-1], parts["train_end"]) == (10, 69, 70)
    assert (parts["val"], parts["test"]) == (list(range(70, 80)), list(range(80, 100)))
    values = torch.arange(10, dtype=torch.float64) ** 2
    naive = naive_errors(values, [8, 9], season=2)
    assert naive["naive_mae"] == (15 + 17) / 2 and naive["seasonal_naive_mae"] == (28 + 32) / 2


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, text, reader, message", [
    ("empty.csv", "", "dna", "empty.csv is empty"),
    ("blank.csv", "\n  \n", "dna", "blank.csv is empty"),
    ("header.csv", "sequence,label\n", "dna", "has a header line but no rows"),
    ("col.csv", "seq,label\nACGT,a\n", "dna", "no column 'sequence' (columns: seq, label); "
     "choose one with --set sequence_column=NAME"),
    ("fields.csv", "sequence,label\nACGT,a\nACGT,b,extra\n", "dna",
     "fields.csv, line 3: 3 fields where the header has 2"),
    ("nolabel.csv", "sequence,label\nACGT,a\nACGT,\n", "dna", "nolabel.csv, line 3: empty label"),
    ("split.csv", "sequence,label,split\nACGT,a,train\nACGT,a,holdout\n", "dna",
     "split.csv, line 3: split 'holdout' is not train, val or test"),
    ("dup.csv", "label,label\na,b\n", "dna", "line 1: column 'label' appears twice"),
    ("orphan.fa", "ACGT\n>a x\nACGT\n", "dna", "orphan.fa, line 1: sequence text before"),
    ("nolabel.fa", ">a x\nACGT\n>onlyname\nACGT\n", "dna",
     "nolabel.fa, line 3: no label in the header 'onlyname'"),
    ("noseq.fa", ">a x\n>b y\nACGT\n", "dna", "noseq.fa, line 1: FASTA record 'a x' has no sequence"),
    ("text.fa", ">a x\nACGT\n", "text", "text.fa is FASTA; this task reads CSV/TSV files"),
    ("nan.csv", "value\n1\n2\nabc\n", "series", "nan.csv, line 4: 'abc' in column 'value' is not"),
    ("gap.csv", "t,value\n1,1\n\n2,\n", "series", "gap.csv, line 4: an empty value in column"),
    ("which.csv", "a,b\n1,2\n", "series", "which column is the series? columns: a, b"),
])
def test_malformed_files_are_one_line_errors(tmp_path, name, text, reader, message):
    path = _write(tmp_path, name, text)
    with pytest.raises(FileFormatError) as info:
        if reader == "series":
            read_series(path)
        else:
            read_labelled(path, "sequence" if reader == "dna" else "text", "label", "split",
                          fasta=reader == "dna")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_labels_and_too_short_series_name_the_line(tmp_path):
    given = examples.write_csv(tmp_path / "u.csv", ["sequence", "label", "split"],
                               [("AC", "x", "train"), ("AG", "x", "train"), ("AT", "z", "test")])
    rows = read_labelled(given, "sequence", "label", "split")
    with pytest.raises(FileFormatError, match=r"u.csv, line 4: label 'z' does not occur in the "
                                              "training rows"):
        split_rows(rows, ["x", "z"], val_fraction=0.1, test_fraction=0.2, generator=None)
    with pytest.raises(FileFormatError, match="a series of 12 values is too short for window 10 "
                                              ".*no training targets left; it needs at least 16"):
        chronological(12, 10, 0.1, 0.2, "short.csv")
    assert len(chronological(16, 10, 0.1, 0.2, "short.csv")["train"]) == 1
    with pytest.raises(FileFormatError, match="too few to hold out"):
        split_rows(read_labelled(examples.write_csv(tmp_path / "few.csv", ["sequence", "label"],
                                                    [("A", "x"), ("C", "y")]),
                                 "sequence", "label", "split"),
                   ["x", "y"], val_fraction=0.1, test_fraction=0.2,
                   generator=torch.Generator().manual_seed(0))


def test_examples_are_seeded_and_position_dependent():
    first, labels = examples.splice_like(200, torch.Generator().manual_seed(3))
    again, _ = examples.splice_like(200, torch.Generator().manual_seed(3))
    assert first == again and {len(s) for s in first} == {examples.SPLICE_LENGTH}
    middle = examples.SPLICE_MIDDLE
    donors = [s for s, lbl in zip(first, labels) if lbl == "EI"]
    acceptors = [s for s, lbl in zip(first, labels) if lbl == "IE"]
    assert all(s[middle : middle + 2] == "GT" or set(s[middle : middle + 2]) - set("ACGT")
               for s in donors)
    assert all(s[middle - 2 : middle] == "AG" or set(s[middle - 2 : middle]) - set("ACGT")
               for s in acceptors)
    series = examples.sunspot_like(600, torch.Generator().manual_seed(0))
    assert series.shape == (600,) and float(series.min()) >= 0
