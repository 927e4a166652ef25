"""Downloading the IMDB archive, against a local HTTP server: success, corruption, interruption,
and no network. A failure is a clear error and leaves nothing in the cache directory."""

import hashlib
import http.server
import socket
import threading

import pytest
from test_tasks import one_torch_thread  # noqa: F401  (autouse fixture)

from fastrnn.tasks import train
from fastrnn.tasks.data import imdb, synthetic
from fastrnn.tasks.data.download import DownloadError, download


class ArchiveServer(http.server.ThreadingHTTPServer):
    """Serves `payload` at any path; mode 'ok', 'corrupt' (bytes flipped) or 'truncated'
    (announces the full length, sends half, closes)."""

    def __init__(self, payload):
        super().__init__(("127.0.0.1", 0), ArchiveHandler)
        self.payload = payload
        self.mode = "ok"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/aclImdb_v1.tar.gz"


class ArchiveHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        payload = self.server.payload
        body = {"ok": payload, "corrupt": payload[:-64] + bytes(64),
                "truncated": payload[: len(payload) // 2]}[self.server.mode]
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        """Keep the test output clean."""


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    path = synthetic.write_archive(tmp_path_factory.mktemp("src") / "aclImdb_v1.tar.gz", 20)
    return path.read_bytes()


@pytest.fixture
def server(payload):
    server = ArchiveServer(payload)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def closed_port_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/aclImdb_v1.tar.gz"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_missing_data_is_downloaded_verified_and_cached(server, payload, tmp_path):
    cache = tmp_path / "cache"
    run = train("sentiment", backend="reference", size="tiny", epochs=1, data_dir=cache,
                url=server.url, sha256=sha(payload), quiet=True)
    assert [p.name for p in cache.iterdir()] == ["aclImdb_v1.tar.gz"]
    assert (cache / "aclImdb_v1.tar.gz").read_bytes() == payload
    assert run["final"]["extras"]["source"] == str(cache / "aclImdb_v1.tar.gz")
    server.mode = "corrupt"   # a second run uses the cache and never asks the server
    assert imdb.locate(cache, url=server.url, sha256=sha(payload)) == cache / "aclImdb_v1.tar.gz"


def test_env_var_names_the_cache(server, payload, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTRNN_DATA", str(tmp_path))
    path = imdb.locate(url=server.url, sha256=sha(payload), quiet=True)
    assert path == tmp_path / "aclImdb_v1.tar.gz" and path.read_bytes() == payload


@pytest.mark.parametrize("mode, message", [
    ("corrupt", "checksum mismatch"),
    ("truncated", "interrupted"),
])
def test_bad_transfer_is_a_clear_error_and_leaves_no_file(server, payload, tmp_path, mode,
                                                          message):
    server.mode = mode
    with pytest.raises(DownloadError, match=message):
        imdb.locate(tmp_path, url=server.url, sha256=sha(payload), quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_no_network_is_a_clear_error_and_leaves_no_file(tmp_path):
    url = closed_port_url()
    with pytest.raises(DownloadError, match=f"could not download {url}"):
        train("sentiment", size="tiny", data_dir=tmp_path, url=url, quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_replaced_only_by_a_verified_download(server, payload, tmp_path):
    target = tmp_path / "file.tar.gz"
    target.write_bytes(b"old")
    server.mode = "corrupt"
    with pytest.raises(DownloadError):
        download(server.url, target, sha(payload), quiet=True)
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1
    server.mode = "ok"
    download(server.url, target, sha(payload), quiet=True)
    assert target.read_bytes() == payload


def test_official_checksum_is_pinned():
    assert imdb.URL == "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    assert imdb.SHA256 == "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
