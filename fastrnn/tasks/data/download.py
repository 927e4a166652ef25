"""Download a file with a progress bar, verify its sha256, and only then move it into place.

The bytes go to a temporary file in the destination directory; a failed, interrupted or
corrupt transfer deletes it, so the cache never holds a half-written archive. The final
`os.replace` is atomic on one file system.
"""

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from fastrnn.tasks.progress import bar as progress_bar

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed (network, HTTP status, truncated transfer or checksum mismatch)."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _stream(response, handle, expected_size, quiet, label):
    """Copy the response body into handle; returns (bytes written, sha256 hex)."""
    digest, written = hashlib.sha256(), 0
    with progress_bar(total=expected_size, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=label, disable=quiet) as bar:
        while True:
            block = response.read(CHUNK)
            if not block:
                break
            handle.write(block)
            digest.update(block)
            written += len(block)
            bar.update(len(block))
    return written, digest.hexdigest()


def download(url, destination, sha256, *, timeout=60, quiet=False):
    """Fetch `url` to `destination` (a Path) if its sha256 matches `sha256`.

    Raises DownloadError with the URL and the reason; `destination` is then left untouched and
    no temporary file remains.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.",
                                     suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    expected = int(length) if length and length.isdigit() else None
                    written, digest = _stream(response, handle, expected, quiet,
                                              destination.name)
            except http.client.IncompleteRead as error:
                raise DownloadError(
                    f"download of {url} was interrupted: the connection closed after "
                    f"{len(error.partial)} more bytes, {error.expected} still expected") from error
            except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
                raise DownloadError(f"could not download {url}: {error}") from error
        if expected is not None and written != expected:
            raise DownloadError(f"download of {url} was interrupted: got {written} of "
                                f"{expected} bytes")
        if digest != sha256:
            raise DownloadError(f"checksum mismatch for {url}: sha256 {digest}, expected {sha256}; "
                                "the file was discarded (corrupt or tampered download)")
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination
