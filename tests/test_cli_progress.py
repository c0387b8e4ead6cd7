"""What ``rag`` prints and returns (issue 15, item 8): one progress bar or none, rates that are
never ``0.0 files/s``, non-zero exits when nothing was ingested, help for every option,
``--version``, and ``rag ask``'s token limit."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from fakes import HashEncoder

from rag.cli import build_parser, main
from rag.commands.ask import limit_note
from rag.commands.progress import per_second


class RecordingEncoder(HashEncoder):
    """Records whether each call was asked to show its own progress bar."""

    shown: list[bool] = []

    def _embed(self, texts, role, *, batch_size, show_progress):  # noqa: ANN001, ANN202
        RecordingEncoder.shown.append(show_progress)
        return super()._embed(texts, role, batch_size=batch_size, show_progress=show_progress)


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    from rag.encoders.registry import REGISTRY, EncoderSpec

    spec = EncoderSpec(
        "rec", "dense", "-", 512, "test", lambda device="cpu": RecordingEncoder(), (), lambda: "-"
    )
    monkeypatch.setitem(REGISTRY, "rec", spec)
    RecordingEncoder.shown = []
    return RecordingEncoder.shown


def many_docs(folder: Path, n: int = 3, paragraphs: int = 40) -> Path:
    folder.mkdir()
    for i in range(n):
        body = "\n\n".join(
            f"Paragraph {j} of file {i} about topic {j * i}." for j in range(paragraphs)
        )
        (folder / f"f{i}.md").write_text(f"# File {i}\n\n{body}\n", "utf-8")
    return folder


def argv(docs: Path, root: Path, *flags: str) -> list[str]:
    return ["ingest", str(docs), "--index", str(root), "--store", "memory", *flags]


def test_no_progress_silences_every_bar(
    recording: list[bool], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = many_docs(tmp_path / "docs")
    chunker = ["--chunker", "sentence", "--chunk-tokens", "8"]  # > 64 chunks per batch
    assert main(argv(docs, tmp_path / "idx", "--encoder", "rec", *chunker, "--no-progress")) == 0
    assert recording and not any(recording)  # the encoder's own bar was never asked for
    assert capsys.readouterr().err == ""


def test_the_one_file_bar_has_a_total_and_a_chunk_rate(
    recording: list[bool], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = many_docs(tmp_path / "docs")
    assert main(argv(docs, tmp_path / "idx", "--encoder", "rec")) == 0
    err = capsys.readouterr().err
    assert "3/3" in err and "chunks/s" in err  # a total (hence an ETA) and the rate
    assert "Batches" not in err and not any(recording)  # nothing nested in it


def test_rates_are_never_printed_as_zero() -> None:
    assert per_second(3, 120.0, "files") == "0.025 files/s"
    assert per_second(2, 7.5, "files") == "0.27 files/s"
    assert per_second(500, 2.0, "chunks") == "250 chunks/s"
    assert per_second(1, 4000.0, "files") != "0.0 files/s"


def test_nothing_ingested_exits_1_with_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(argv(empty, tmp_path / "idx", "--encoder", "bm25", "--no-progress")) == 1
    captured = capsys.readouterr()
    assert "ingested 0 files" in captured.out
    assert "no supported file under" in captured.err and ".pdf" in captured.err
    assert not (tmp_path / "idx").exists()  # a new index that stored nothing leaves no folder
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert main(argv(binary, tmp_path / "idx", "--encoder", "bm25", "--no-progress")) == 1
    captured = capsys.readouterr()
    assert "failed 1" in captured.out and "nothing ingested: the only file failed" in captured.err


def test_a_name_with_a_newline_is_one_summary_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = many_docs(tmp_path / "docs", n=1, paragraphs=2)
    (docs / "bro\nken.pdf").write_bytes(b"%PDF-1.4 not really")
    assert main(argv(docs, tmp_path / "idx", "--encoder", "bm25", "--no-progress")) == 0
    failed = [line for line in capsys.readouterr().out.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "bro\\nken.pdf: " in failed[0]


def test_search_piped_into_a_closed_reader_ends_without_a_traceback(tmp_path: Path) -> None:
    docs = many_docs(tmp_path / "docs", n=1, paragraphs=4)
    assert main(argv(docs, tmp_path / "idx", "--encoder", "bm25", "--no-progress")) == 0
    search = [sys.executable, "-m", "rag.cli", "search", "topic", "--index", str(tmp_path / "idx")]
    proc = subprocess.Popen(search, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `rag search ... | head -0`: every write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipe" not in err


def test_an_unchanged_rerun_still_succeeds(tmp_path: Path) -> None:
    docs = many_docs(tmp_path / "docs", n=1, paragraphs=2)
    args = argv(docs, tmp_path / "idx", "--encoder", "bm25", "--no-progress")
    assert main(args) == 0 and main(args) == 0


def test_urls_are_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "https://example.com/a.pdf", "--index", str(tmp_path / "i")]) == 2
    err = capsys.readouterr().err
    assert "URLs are not read: download the file and pass its path" in err
    assert "https://example.com/a.pdf" in err  # both slashes kept


def test_every_option_has_help_that_lists_its_choices() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing, unlisted = [], []
    for name, command in sub.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = f"{name} {action.option_strings or action.dest}"
            if not action.help:
                missing.append(label)
            elif action.choices and not all(str(c) in action.help for c in action.choices):
                unlisted.append(label)
    assert missing == [] and unlisted == []
    helps = {a.dest: a.help for a in sub.choices["ingest"]._actions}
    for dest, name in [("encoder", "minilm"), ("chunker", "recursive"), ("store", "memory")]:
        assert name in helps[dest]
    assert "late" in helps["situated"]
    search = {a.dest: a.help for a in sub.choices["search"]._actions}
    assert "rrf" in search["fusion"] and "background" in search["fusion"]
    ask = {a.dest: a.help for a in sub.choices["ask"]._actions}
    assert "self_certainty" in ask["metric"] and "vanilla" in ask["strategy"]


def test_version_prints_the_package_version() -> None:
    from importlib.metadata import version

    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"rag {version('situated-rag')}"


def test_ask_defaults_to_a_finishing_length_and_names_the_limit() -> None:
    args = build_parser().parse_args(["ask", "q"])
    assert args.max_new_tokens == 256

    def answer(finish: str, tokens: int, abstained: bool = False) -> SimpleNamespace:
        generation = SimpleNamespace(finish_reason=finish, completion_tokens=tokens)
        return SimpleNamespace(
            abstained=abstained, chosen=0, candidates=[SimpleNamespace(generation=generation)]
        )

    note = limit_note(answer("length", 256), 256)
    assert note == "(stopped at the 256-token limit; pass --max-new-tokens N for more)"
    assert limit_note(answer("stop", 40), 256) is None
    assert limit_note(answer("length", 8), 256) is None  # fast mode's scored prefix
    assert limit_note(answer("length", 256, abstained=True), 256) is None
