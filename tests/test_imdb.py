"""The IMDB loader on generated archives: layouts, tokenizer, vocabulary, padding and packing."""

import tarfile

import pytest
import torch
from test_tasks import one_torch_thread  # noqa: F401  (autouse fixture)
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import fastrnn
from fastrnn.tasks import train
from fastrnn.tasks.data import imdb, synthetic
from fastrnn.tasks.data.padded import PaddedTextDataset
from fastrnn.tasks.data.text import Vocab, tokenize

N = 12   # reviews per split and label in the generated archives


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return synthetic.write_archive(tmp_path_factory.mktemp("imdb") / "aclImdb_v1.tar.gz", N)


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.xz", ".tar"])
def test_archive_round_trip(tmp_path, suffix):
    path = synthetic.write_archive(tmp_path / f"reviews{suffix}", N, seed=1)
    splits = imdb.load(path)
    expected = synthetic.reviews(N, seed=1)
    for split in ("train", "test"):
        reviews = splits[split]
        assert len(reviews) == 2 * N
        assert reviews.labels.count(1) == N and reviews.labels.count(0) == N
        texts = {t for name in ("pos", "neg") for _, t in expected[(split, name)]}
        assert set(reviews.texts) == texts
        positive = {t for _, t in expected[(split, "pos")]}
        assert all((text in positive) == bool(label)
                   for text, label in zip(reviews.texts, reviews.labels))


def test_directory_and_archive_give_the_same_reviews(tmp_path, archive):
    tree = synthetic.write_tree(tmp_path, N)
    from_archive = imdb.load(archive)
    for source in (tree, tmp_path):   # the aclImdb directory itself, or its parent
        loaded = imdb.load(source)
        for split in ("train", "test"):
            assert loaded[split].texts == from_archive[split].texts
            assert loaded[split].labels == from_archive[split].labels


def test_locate_prefers_local_data_then_env_var(tmp_path, archive, monkeypatch):
    assert imdb.locate(archive) == archive
    (tmp_path / "aclImdb_v1.tar.gz").write_bytes(archive.read_bytes())
    assert imdb.locate(tmp_path) == tmp_path / "aclImdb_v1.tar.gz"
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    assert imdb.locate() == tmp_path / "aclImdb_v1.tar.gz"


def test_tokenizer():
    assert tokenize("A <br />GREAT film!<br/>Don't miss it... (9/10)") == [
        "a", "great", "film", "!", "don't", "miss", "it", ".", ".", ".", "(", "9", "/", "10", ")"]
    assert tokenize("Café—naïve") == ["café", "—", "naïve"]
    assert tokenize("") == []


def test_vocabulary_from_training_split():
    vocab = Vocab([["b", "a", "b"], ["c", "b", "a", "d"]], max_size=4)
    assert vocab.itos == ["<pad>", "<unk>", "b", "a"]   # counts 3, 2; ties alphabetical
    assert vocab.encode(["a", "z", "b"]) == [3, 1, 2]
    assert len(Vocab([["x", "x", "y"]], min_freq=2)) == 3
    with pytest.raises(ValueError, match="at least 3"):
        Vocab([["x"]], max_size=2)


def test_padding_and_batches_cover_every_example_once():
    sequences = [[5] * n for n in (3, 1, 7, 2, 7, 4, 0)]
    data = PaddedTextDataset(sequences, [0, 1, 0, 1, 1, 0, 1])
    seen = []
    for batch in data.batches(3, shuffle=True, generator=torch.Generator().manual_seed(0)):
        tokens, lengths = batch.inputs
        assert tokens.shape == (len(lengths), int(lengths.max()))
        assert lengths.dtype == torch.int64 and lengths.device.type == "cpu"
        for row, length in zip(tokens, lengths):
            # Every real token is 5; the empty review is the one <pad> (0) of length 1.
            assert row[:length].tolist() in ([5] * length, [0]) and not row[length:].any()
            seen.append(int(length))
        assert batch.tokens == int(lengths.sum())
    assert sorted(seen) == [1, 1, 2, 3, 4, 7, 7]   # the empty review became one <pad>
    ordered = [int(n) for b in data.batches(3) for n in b.inputs[1]]
    assert ordered == sorted(ordered)


def test_packing_restores_batch_order():
    data = PaddedTextDataset([[1, 2], [3, 4, 5, 6], [7], [8, 9, 10]], [0, 1, 0, 1])
    tokens, lengths = data.collate([0, 1, 2, 3]).inputs
    embed = torch.nn.Embedding(11, 4, padding_idx=0)
    packed = pack_padded_sequence(embed(tokens), lengths, batch_first=True, enforce_sorted=False)
    unpacked, unpacked_lengths = pad_packed_sequence(packed, batch_first=True)
    assert torch.equal(unpacked, embed(tokens)) and torch.equal(unpacked_lengths, lengths)
    lstm = fastrnn.LSTM(4, 3, batch_first=True, backend="reference")
    _, (h_n, _) = lstm(packed)
    for row in range(4):   # h_n of the packed batch is each review's own final state, in order
        _, (alone, _) = lstm(embed(tokens[row : row + 1, : lengths[row]]))
        torch.testing.assert_close(h_n[:, row], alone[:, 0])


def test_sentiment_trains_on_a_generated_archive(archive, tmp_path):
    big = synthetic.write_archive(tmp_path / "aclImdb_v1.tar.xz", 150)
    run = train("sentiment", backend="reference", size="tiny", data_dir=big, epochs=4,
                hidden=16, max_len=40, out=tmp_path / "run", quiet=True, plot_states=True)
    extras = run["final"]["extras"]
    assert (extras["n_train"], extras["n_test"]) == (300, 300)
    words = synthetic.POSITIVE + synthetic.NEGATIVE + synthetic.FILLER
    assert extras["vocab_size"] == len(words) + len(["really", ".", "!", ","]) + len(["<pad>", "<unk>"])
    assert run["final"]["value"] > 0.7
    assert (tmp_path / "run" / "states.png").stat().st_size > 0


def test_subset_and_truncation_options(archive):
    run = train("sentiment", backend="reference", size="tiny", data_dir=archive, epochs=1,
                n_train=10, n_test=8, max_len=5, quiet=True)
    extras = run["final"]["extras"]
    assert (extras["n_train"], extras["n_test"]) == (10, 8)
    assert extras["mean_train_tokens"] <= 5


def test_non_aclimdb_archive_is_a_clear_error(tmp_path):
    other = synthetic.write_archive(tmp_path / "other.tar.gz", 2, prefix="reviews")
    with pytest.raises(imdb.ImdbFormatError, match=r"no files match aclImdb/train/neg/\*\.txt"):
        imdb.load(other)
    text = tmp_path / "notes.tar.gz"
    text.write_text("not a tar file")
    with pytest.raises(imdb.ImdbFormatError, match="not a readable tar archive"):
        imdb.load(text)
    with pytest.raises(imdb.ImdbFormatError, match="aclImdb layout"):
        imdb.load(tmp_path)


def test_truncated_archive_is_a_clear_error(tmp_path, archive):
    cut = tmp_path / "aclImdb_v1.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(imdb.ImdbFormatError, match="truncated or corrupt|aclImdb layout"):
        imdb.load(cut)


def test_tar_members_are_matched_by_layout_not_order(tmp_path):
    path = tmp_path / "nested.tar"
    synthetic.write_archive(path, 2, prefix="download/aclImdb")
    assert len(imdb.load(path)["train"]) == 4
    with tarfile.open(path) as archive:
        assert all(name.startswith("download/aclImdb/") for name in archive.getnames())
