"""Per-file limits that keep one hostile file from taking a batch down, and the refusal of text
that is not worth indexing.

Every breach becomes a ConnectorError, so the loader reports it as an IngestError naming the
file; the batch goes on. The defaults (:class:`Limits`) are generous for real documents and are
overridden per call: ``load_directory(folder, limits=Limits(max_seconds=600))``. The size of a
file on disk is capped by ``max_bytes`` of the loaders, the chunks per file by the ingest
(:data:`rag.index.ingest.DEFAULT_MAX_CHUNKS`).
"""

from __future__ import annotations

import collections
import io
import re
import signal
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

from connectors.common import ConnectorError

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What reading one file may cost.

    ``max_decompressed_bytes`` caps what a file may expand to: a gzip file once decompressed,
    the members of a zip container (DOCX) together, each stream of a PDF. ``max_seconds`` caps
    the time to read and parse it (interrupted in the main thread; elsewhere a file that took
    longer is refused once parsed).
    """

    max_decompressed_bytes: int = 100 * MIB
    max_seconds: float = 120.0


class ParseTimeout(BaseException):
    """A file's time is up. A BaseException, so that parsers' own ``except Exception`` handlers
    (pypdf has many) cannot swallow it."""


def _raise_timeout(signum: int, frame: object) -> None:
    raise ParseTimeout


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ParseTimeout` in the body after ``seconds``.

    A SIGALRM timer interrupts Python code (parsers, regular expressions) only in the main
    thread, and only when nobody else uses that signal; otherwise the elapsed time is checked
    when the body returns, which bounds what is indexed but not the time spent.
    """
    start = time.monotonic()
    armed = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )
    if armed:
        signal.signal(signal.SIGALRM, _raise_timeout)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
    if time.monotonic() - start > seconds:
        raise ParseTimeout


def too_large(max_bytes: int) -> ConnectorError:
    return ConnectorError(
        f"too large once decompressed (over {max_bytes} bytes; the limit is "
        "Limits.max_decompressed_bytes)"
    )


def gunzip(raw: bytes, max_bytes: int) -> bytes:
    """A gzip file's content, at most ``max_bytes`` of it (a bomb stops there)."""
    import gzip

    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
            data = fh.read(max_bytes + 1)
    except EOFError as exc:
        raise ConnectorError("invalid gzip file (truncated)") from exc
    except (OSError, zlib.error) as exc:  # BadGzipFile is an OSError; a CRC error too
        raise ConnectorError("invalid gzip file (corrupt compressed data)") from exc
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    return data


def check_zip(data: bytes, max_bytes: int) -> None:
    """Refuse a zip container (DOCX, or any zip handed to a connector) whose members expand past
    ``max_bytes`` together.

    The declared sizes are enough: :mod:`zipfile` never returns more than a member declares
    (and checks its CRC), so a member cannot expand past what is counted here.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not readable as a zip: the connector gives its own reason
    if total > max_bytes:
        raise too_large(max_bytes)


_PYPDF_OUTPUT_CAPS = (
    "zlib_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "brotli_maximum_output_length",
    "array_based_stream_maximum_output_length",
)


@contextmanager
def decompression_caps(data: bytes, format: str, max_bytes: int) -> Iterator[None]:
    """Apply ``max_bytes`` to what parsing ``data`` as ``format`` may decompress."""
    if data.startswith(b"PK\x03\x04"):
        check_zip(data, max_bytes)
    if format != "pdf":
        yield
        return
    import pypdf

    apply = getattr(pypdf, "apply_configuration", None)
    if apply is None:  # pypdf < 6 has only its own fixed caps (75 MB per stream)
        yield
        return
    known = {f.name for f in fields(pypdf.Configuration)}
    with apply(**{name: max_bytes for name in _PYPDF_OUTPUT_CAPS if name in known}):
        yield


# -- text not worth indexing ----------------------------------------------------------------

# Text this short is never refused: a tiny odd file costs one chunk.
MIN_CHECKED_CHARS = 1024
REPEATED_CHAR_SHARE = 0.9  # one character making up this share of the non-space text
CONTROL_SHARE = 0.05  # control characters and U+FFFD: text extraction of binary data
# zlib (level 1) ratio above which text is the same content over and over: prose, markup and
# logs stay under 20:1 (the shared documents: 2.4 to 18), a repeated paragraph reaches 100:1.
MAX_COMPRESSION_RATIO = 50.0
MIN_RATIO_BYTES = 16 * 1024
_SAMPLE = 64 * 1024
_SAMPLES = 16
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")


def _sample(text: str) -> str:
    """All of ``text`` up to 1 MiB, else 16 evenly spaced 64 KiB slices (the checks stay fast on
    a 100 MB file, and a file is judged by all of it, not by its first page)."""
    if len(text) <= _SAMPLE * _SAMPLES:
        return text
    step = len(text) // _SAMPLES
    return "".join(text[i * step : i * step + _SAMPLE] for i in range(_SAMPLES))


def text_refusal(text: str) -> str | None:
    """Why ``text`` should not be indexed (binary, one repeated character, the same content over
    and over), or None when it is fine."""
    if "\x00" in text:
        return "binary content (NUL characters in the text)"
    sample = _sample(text)
    if len(sample) < MIN_CHECKED_CHARS:
        return None
    control = len(_CONTROL.findall(sample))
    if control > CONTROL_SHARE * len(sample):
        return f"not text ({control / len(sample):.0%} control characters or undecodable bytes)"
    counts = collections.Counter(sample)
    for space in " \t\r\n\f\v":
        counts.pop(space, None)
    visible = sum(counts.values())
    if visible >= MIN_CHECKED_CHARS:
        char, n = counts.most_common(1)[0]
        if n >= REPEATED_CHAR_SHARE * visible:
            return f"mostly one repeated character ({char!r} is {n / visible:.0%} of the text)"
    data = sample.encode("utf-8", "replace")
    if len(data) >= MIN_RATIO_BYTES:
        ratio = len(data) / len(zlib.compress(data, 1))
        if ratio > MAX_COMPRESSION_RATIO:
            return f"the same content repeated over and over (it compresses {ratio:.0f}:1)"
    return None
