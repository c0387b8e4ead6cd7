"""A generated corpus of hostile files, ingested in one batch into a real index.

Every file is either ingested (and then findable) or reported with its path and a clear reason;
nothing crashes, no file takes long, every good file is ingested. The files are built in
``tmp_path`` at test time: broken, encrypted and bomb PDFs, zip-bomb and malformed DOCX files,
gzip bombs, deeply nested and headingless HTML, NUL-laden Markdown, repeated characters, binary
files with text extensions, undecodable names, huge lines, FIFOs, sockets, symbolic links out
of the tree, loops, dangling links and an unreadable folder. Limits are lowered (8 MiB
decompressed, 10 s per file) so the bombs stay cheap to build.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import random
import re
import socket
import stat
import time
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
from fakes import register_hash_encoder
from fixtures_docs import make_docx, make_pdf, raw_pdf

from connectors.directory import load_directory
from connectors.limits import MIB, Limits
from connectors.walk import display_name
from rag.index import EncoderEntry, Index, IndexConfig
from rag.types import Document, IngestError

LIMITS = Limits(max_decompressed_bytes=8 * MIB, max_seconds=10)
MAX_BYTES = 16 * MIB
PER_FILE_SECONDS = 20.0  # "no hang", with room for a loaded shared machine
INGESTED = "ingested"
# What must never reach the user as a reason: library internals and raw exception names.
INTERNALS = re.compile(r"[A-Z][a-z]+Error|codec|zlib|lxml|surrogate|Traceback|Errno|NoneType")

# good files: name -> (content, a word only that file holds)
GOOD_TEXT = {
    "good/guide.md": "# Guide\n\nThe quasar calibration uses a zorbleflux lens.\n\n## Steps\n\n1. Align.\n",
    "good/notes.txt": "Field notes: the heron population grew after the wetland qwertyheron survey.\n",
    "good/page.html": "<html><head><title>Owls</title></head><body><h1>Owls</h1>"
    "<p>Barn owls hunt voles; the strixvolant study counted them.</p></body></html>",
    "good/unicode.md": "# Zürich\n\nDie Straße führt zum See. 東京の図書館 kanjiword 百科.\n",
    "good/nested/deep/readme.markdown": "Deep folders are fine: glimmerdeep.\n",
}


def _pdf_with_stream(stream: bytes, *, flate: bool = True, extra: str = "") -> bytes:
    """A one-page PDF whose content stream is ``stream`` (Flate-compressed when asked)."""
    body = zlib.compress(stream, 9) if flate else stream
    filt = "/Filter /FlateDecode " if flate else ""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R {extra}>>"
        ).encode(),
        b"<< %s/Length %d >>\nstream\n%s\nendstream" % (filt.encode(), len(body), body),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _docx_with(document_xml: bytes | None, *, drop: tuple[str, ...] = ()) -> bytes:
    """A copy of a real DOCX with ``word/document.xml`` replaced (None: kept) and parts dropped."""
    src = zipfile.ZipFile(io.BytesIO(make_docx()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename in drop:
                continue
            data = src.read(info.filename)
            if info.filename == "word/document.xml" and document_xml is not None:
                data = document_xml
            out.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _paragraphs(text: str, times: int) -> bytes:
    para = f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"
    return f'<?xml version="1.0"?><w:document {W}><w:body>{para * times}</w:body></w:document>'.encode()


def _pdfs() -> dict[str, tuple[bytes, str]]:
    good = make_pdf([["Chapter one", "The pdfwordunique value is stated here."]])
    text_ops = b"BT /F1 12 Tf 72 720 Td (bomb) Tj ET\n"
    return {
        "good/report.pdf": (good, INGESTED),
        "good/pdf-named.txt": (raw_pdf([["The renamedpdfword report."]]), INGESTED),
        "pdf/empty.pdf": (b"", "empty file"),
        "pdf/truncated.pdf": (good[: len(good) // 3], "PDF"),
        "pdf/garbage.pdf": (b"%PDF-1.7\n this is not a pdf body at all \n", "invalid PDF"),
        "pdf/header-only.pdf": (b"%PDF-1.4\n%%EOF\n", "invalid PDF"),
        "pdf/not-a-pdf.pdf": (b"plain words and no header", "invalid PDF"),
        "pdf/encrypted.pdf": (make_pdf([["secret"]], user_password="hunter2"), "password"),
        "pdf/image-only.pdf": (make_pdf([[], []]), "no text layer"),
        "pdf/flate-bomb.pdf": (_pdf_with_stream(text_ops + b" " * (40 * MIB)), "PDF"),
        "pdf/flate-bomb-text.pdf": (  # under the cap: its text is one word over and over
            _pdf_with_stream(text_ops * (MIB // 4 // len(text_ops))),
            "repeated",
        ),
        "pdf/deep-arrays.pdf": (_pdf_with_stream(text_ops, extra="/Foo " + "[" * 50_000), "PDF"),
        "pdf/bad-stream.pdf": (
            _pdf_with_stream(
                b"\x78\x9c" + os.urandom(4000), flate=False, extra="/Filter /FlateDecode"
            ),
            "PDF",
        ),
        "pdf/huge-length.pdf": (
            _pdf_with_stream(text_ops, flate=False).replace(
                b"/Length %d" % (len(text_ops)), b"/Length 99999999999"
            ),
            "",
        ),
    }


def _docx_files() -> dict[str, tuple[bytes, str]]:
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f"<w:document {W}><w:body><w:p><w:r><w:t>leak &x; end</w:t></w:r></w:p></w:body>"
        "</w:document>"
    ).encode()
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">'
        '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;">]>'
        f"<w:document {W}><w:body><w:p><w:r><w:t>&f;&f;&f;&f;</w:t></w:r></w:p></w:body>"
        "</w:document>"
    ).encode()
    corrupt = bytearray(make_docx())
    start = corrupt.find(b"word/document.xml") + 40
    corrupt[start : start + 200] = os.urandom(200)
    only_types = io.BytesIO()
    with zipfile.ZipFile(only_types, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
    return {
        "good/report.docx": (make_docx(), INGESTED),
        "docx/zip-bomb.docx": (_docx_with(_paragraphs("a" * 1000, 20_000)), "decompressed"),
        "docx/repeated-paragraphs.docx": (
            _docx_with(
                _paragraphs("The same sentence again and again, forever and ever. " * 4, 5_000)
            ),
            "repeated",
        ),
        "docx/no-body.docx": (
            _docx_with(f'<?xml version="1.0"?><w:document {W}/>'.encode()),
            "no body",
        ),
        "docx/empty-body.docx": (_docx_with(_paragraphs("", 1)), "no text"),
        "docx/malformed.docx": (_docx_with(b"<w:document><w:body><unclosed>"), "malformed XML"),
        "docx/xxe.docx": (_docx_with(xxe), ""),
        "docx/billion-laughs.docx": (_docx_with(laughs), ""),
        "docx/no-document-part.docx": (_docx_with(None, drop=("word/document.xml",)), "DOCX"),
        "docx/only-content-types.docx": (only_types.getvalue(), "DOCX"),
        "docx/corrupt-member.docx": (bytes(corrupt), "DOCX"),
        "docx/truncated.docx": (make_docx()[:3000], "invalid DOCX"),
        "docx/not-a-zip.docx": (b"I am not a zip archive", "invalid DOCX"),
    }


def _gzip_files() -> dict[str, tuple[bytes, str]]:
    good = gzip.compress(b"The gzipwordunique manual, chapter one.\n")
    corrupt = bytearray(gzip.compress(os.urandom(20_000)))
    corrupt[100:140] = b"\x00" * 40
    return {
        "good/manual.txt.gz": (good, INGESTED),
        "gz/bomb.txt.gz": (gzip.compress(b"\x00" * (40 * MIB), 9), "decompressed"),
        "gz/repeated.txt.gz": (gzip.compress(b"a" * (6 * MIB), 9), "repeated character"),
        "gz/truncated.txt.gz": (good[:-10], "invalid gzip"),
        "gz/corrupt.txt.gz": (bytes(corrupt), "gzip"),
        "gz/nested.txt.gz": (gzip.compress(gzip.compress(b"inner text\n")), "gzip archive"),
        "gz/empty.txt.gz": (gzip.compress(b""), "empty file"),
        "gz/not-gzip.gz": (b"\x1f\x8b" + b"\xff" * 30, "gzip"),
    }


def _html_files() -> dict[str, tuple[bytes, str]]:
    deep = "<html><body>" + "<div>" * 100_000 + "deepword" + "</div>" * 100_000 + "</body></html>"
    unclosed = "<html><body>" + "<b>" * 50_000 + "unclosedword</body></html>"
    heading = "<html><body><h1>" + _words(200_000) + "</h1><p>after</p></body></html>"
    nul_late = "<html><body><p>" + "visible words here. " * 600 + "\x00hidden</p></body></html>"
    return {
        "html/no-heading.html": (
            b"<html><head><title>Plain Page</title></head><body><p>Hello there</p></body></html>",
            INGESTED,
        ),
        "html/no-heading-no-title.html": (b"<p>Hello</p>", INGESTED),
        "html/deep-100k.html": (deep.encode(), INGESTED),
        "html/unclosed-50k.html": (unclosed.encode(), INGESTED),
        "html/huge-heading.html": (heading.encode(), INGESTED),
        "html/nul-after-8k.html": (nul_late.encode(), "NUL"),
        "html/only-script.html": (b"<html><script>var x = 1;</script></html>", "no text"),
        "html/png.html": (b"\x89PNG\r\n\x1a\n" + os.urandom(2000), "PNG"),
        "html/xxe.xhtml": (
            b'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>leak &x; end</p></body></html>',
            INGESTED,
        ),
        "html/bogus-charset.html": (
            b'<html><head><meta charset="x-no-such-charset"></head><body><p>caf\xe9</p></body></html>',
            INGESTED,
        ),
    }


def _text_files() -> dict[str, tuple[bytes, str]]:
    rng = random.Random(13)
    no_nul = bytes(b for b in rng.randbytes(40_000) if b)
    return {
        "text/nul-after-8k.md": (b"# Title\n\n" + b"word " * 3000 + b"\x00\x00 hidden", "NUL"),
        "text/repeated-char.txt": (b"a" * (5 * MIB), "repeated character"),
        "text/repeated-char-spaced.txt": (b"x " * MIB, "repeated character"),
        "text/repeated-paragraph.txt": (
            b"The same paragraph once more, as before. " * 50_000,
            "repeated",
        ),
        "text/latin1.txt": ("caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1"), "not valid UTF-8"),
        "text/utf16-no-bom.txt": ("plain words".encode("utf-16-le"), "binary"),
        "text/utf16-odd.txt": (b"\xff\xfe" + "abc".encode("utf-16-le") + b"x", "UTF-16"),
        "text/random.txt": (rng.randbytes(50_000), "binary"),
        "text/random-no-nul.md": (no_nul, ""),
        "text/elf.txt": (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "ELF"),
        "text/sqlite.txt": (b"SQLite format 3\x00" + b"\x00" * 100, "SQLite"),
        "text/zip.md": (_zip_bytes(), "zip archive"),
        "text/whitespace.txt": (b"  \n\t\n   \n", "no text"),
        "text/empty.md": (b"", "empty file"),
        "text/controls.txt": (bytes(range(1, 9)) * 500, "control"),
        "text/replacement-chars.txt": (("\ufffd" * 3000 + " some words").encode(), "not text"),
        "text/huge-line.txt": (_words(400_000).encode(), INGESTED),
        "text/huge-heading.md": (f"# {_words(200_000)}\n\nbody text\n".encode(), INGESTED),
        # lines that made the old heading patterns quadratic (hours); now read at once and
        # refused for what they are
        "text/huge-heading-spaces.md": (b"# a" + b" \t" * MIB + b"b\n\ntext after\n", "repeated"),
        "text/huge-link-heading.md": (b"# " + b"[a" * MIB + b"\n\nbody text\n", "repeated"),
        "text/too-large.txt": (b"", "too large"),  # made sparse below
        "text/" + "n" * 200 + ".txt": (b"A file with a long name: longnameword.\n", INGESTED),
        "text/new\nline.md": (b"# Newline\n\nA name with a newline: newlineword.\n", INGESTED),
    }


def _words(n: int) -> str:
    rng = random.Random(n)
    return " ".join(f"w{rng.randrange(10**6)}" for _ in range(n))


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    return buf.getvalue()


def build_corpus(root: Path, outside: Path) -> dict[str, str]:
    """Write the corpus under ``root`` (and link targets under ``outside``); return what each
    entry must give: INGESTED, or a substring of its reason ("" for either, but no crash)."""
    files = {**_pdfs(), **_docx_files(), **_gzip_files(), **_html_files(), **_text_files()}
    for rel, text in GOOD_TEXT.items():
        files[rel] = (text.encode(), INGESTED)
    expected = {}
    for rel, (data, expect) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expected[rel] = expect
    with open(root / "text/too-large.txt", "wb") as fh:
        fh.truncate(MAX_BYTES + 1)  # sparse: costs no disk

    bad_name = os.fsdecode(b"names/bad\xff\xfename.txt")
    (root / "names").mkdir()
    (root / bad_name).write_bytes(b"Undecodable name, fine text: badnameword.\n")
    expected[bad_name] = INGESTED
    expected.update(_special(root, outside))
    return expected


def _special(root: Path, outside: Path) -> dict[str, str]:
    """FIFOs, sockets, links in every shape, hidden files and an unreadable folder."""
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_text("outside secret words\n", "utf-8")
    (outside / "folder").mkdir()
    (outside / "folder" / "inner.txt").write_text("outside folder words\n", "utf-8")
    special = root / "special"
    special.mkdir()
    os.mkfifo(special / "fifo.txt")
    links = {
        "to-secret.txt": outside / "secret.txt",
        "to-outside-folder": outside / "folder",
        "dangling.md": root / "missing.md",
        "loop-a.md": special / "loop-b.md",
        "loop-b.md": special / "loop-a.md",
        "self.md": special / "self.md",
        "to-good-folder": root / "good",
        "to-good-file.md": root / "good" / "guide.md",
        "to-etc-passwd.txt": Path("/etc/passwd"),
    }
    for name, target in links.items():
        (special / name).symlink_to(target)
    expected = {
        "special/fifo.txt": "named pipe",
        "special/to-secret.txt": "outside the folder",
        "special/to-outside-folder": "outside the folder",
        "special/dangling.md": "broken symbolic link",
        "special/loop-a.md": "loop",
        "special/loop-b.md": "loop",
        "special/self.md": "loop",
        "special/to-good-folder": "inside the tree",
        "special/to-good-file.md": INGESTED,
        "special/to-etc-passwd.txt": "outside the folder",
        "locked": "cannot read",
    }
    sock_path = special / "sock"
    if len(os.fsencode(sock_path)) < 100:  # AF_UNIX path length limit
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(os.fspath(sock_path))
        expected["special/sock"] = "socket"
    (root / ".hidden.md").write_text("hidden words\n", "utf-8")  # skipped, no record
    (root / "locked").mkdir()
    (root / "locked" / "inside.md").write_text("# Locked\n\nlockedword\n", "utf-8")
    return expected


def lock(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``folder`` unlistable: by permissions, or (as root, whom they do not stop) by
    making listing it fail the way the kernel would."""
    folder.chmod(0)
    if os.geteuid() != 0:
        return
    real = os.scandir
    locked = folder.resolve()

    def scandir(path: os.PathLike[str] | str | int = ".") -> os.ScandirIterator:
        if not isinstance(path, int) and Path(path).resolve() == locked:  # rmtree passes fds
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def hash_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Index:
    register_hash_encoder(monkeypatch)
    config = IndexConfig(
        encoders=[EncoderEntry("hash"), EncoderEntry("bm25", kind="lexical")], store="memory"
    )
    return Index(tmp_path / "idx", config)


def timed_items(root: Path, **options: object) -> tuple[list, float]:
    """Every item of ``load_directory(root)``, and the longest time any one of them took."""
    items, slowest = [], 0.0
    stream = load_directory(root, max_bytes=MAX_BYTES, limits=LIMITS, **options)
    while True:
        start = time.perf_counter()
        item = next(stream, None)
        slowest = max(slowest, time.perf_counter() - start)
        if item is None:
            return items, slowest
        items.append(item)


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "corpus"
    expected = build_corpus(root, tmp_path / "outside")
    lock(root / "locked", monkeypatch)
    yield root, expected
    (root / "locked").chmod(stat.S_IRWXU)  # let pytest clean up


@pytest.mark.slow
def test_hostile_corpus_is_ingested_or_reported_file_by_file(
    corpus: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, expected = corpus
    hostile = [r for r in expected if not r.startswith("good/")]
    assert len(hostile) >= 60 and len(expected) - len(hostile) >= 8

    items, slowest = timed_items(root)
    assert slowest < PER_FILE_SECONDS  # no hang: every file is bounded
    index = hash_index(tmp_path, monkeypatch)
    report = index.ingest(items)

    base = root.resolve()
    source = {rel: display_name(str(base / rel)) for rel in expected}
    failed = {e.path: e.reason for e in report.failed}
    ingested = set(report.ingested)
    # every entry has exactly one outcome, and nothing else was read (hidden files, link targets)
    assert set(failed) | ingested == set(source.values())
    assert not set(failed) & ingested
    for rel, expect in expected.items():
        path = source[rel]
        if expect == INGESTED:
            assert path in ingested, (rel, failed.get(path))
        elif path in failed:
            assert expect in failed[path], (rel, failed[path])
            assert not INTERNALS.search(failed[path]), (rel, failed[path])
        else:
            assert expect == "", (rel, "was ingested")
    for reason in failed.values():
        assert reason.strip() and "\n" not in reason

    # every good file is findable by its own word; nothing from outside the folder got in
    for rel, text in GOOD_TEXT.items():
        word = next(
            w
            for w in re.findall(r"\w+", text)
            if w.endswith(("word", "flux", "heron", "volant", "deep"))
        )
        hits = index.retriever("bm25").retrieve(word, k=1)
        assert hits and hits[0].chunk.source == source[rel], rel
    stored = " ".join(c.text for c in index.all_chunks())
    for leak in ("outside secret", "outside folder", "root:x:0", "lockedword", "hidden words"):
        assert leak not in stored
    for rel in ("pdf/flate-bomb-text.pdf", "docx/xxe.docx", "docx/billion-laughs.docx"):
        assert "lol" * 100 not in stored and "bomb bomb bomb bomb" not in stored, rel

    # the outcome counts, for the record (pytest -s shows them)
    reasons = Counter(re.sub(r"\d+", "N", r.split("(")[0]).strip() for r in failed.values())
    print(f"\n{len(expected)} entries ({len(hostile)} hostile): {len(ingested)} ingested")
    for reason, n in reasons.most_common():
        print(f"  {n:3d}  {reason}")


def test_headingless_and_deep_html_and_bad_names_are_ingested_as_documents(
    corpus: tuple[Path, dict[str, str]],
) -> None:
    root, _ = corpus
    items = {
        (i.id if isinstance(i, Document) else i.path): i
        for i in load_directory(root, include=["html/*", "names/*"], limits=LIMITS)
    }
    plain = items["html/no-heading.html"]
    assert [s.section for s in plain.spans] == [("Plain Page",)]
    assert plain.text == "Hello there"
    assert items["html/no-heading-no-title.html"].spans[0].section == ("no-heading-no-title",)
    assert "deepword" in items["html/deep-100k.html"].text
    huge = items["html/huge-heading.html"]
    assert max(len(t) for s in huge.spans for t in s.section) <= 200
    bad = items["names/bad\\xff\\xfename.txt"]
    assert bad.source.endswith("names/bad\\xff\\xfename.txt") and bad.title == "bad\\xff\\xfename"
    assert isinstance(items[str(root.resolve() / "html/nul-after-8k.html")], IngestError)
