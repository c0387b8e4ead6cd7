"""``rag ingest PATH --index DIR``: parse, chunk, embed and store a folder or file."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rag.commands import choice, encoder_name, situated_mode
from rag.commands.progress import FileBar, per_second
from rag.names import CHUNKERS, ENCODERS, SITUATED, STORES, listed

# The SitEmb paper's alpha, as in rag/encoders/situated/residual.py (kept here so that building
# the parser imports no numpy); tests/test_index_residual.py checks the two agree.
DEFAULT_ALPHA = 0.5
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

if TYPE_CHECKING:
    from rag.index import EncoderEntry, Index, IndexConfig, IngestReport


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="ingest a folder (or a file) into an index")
    p.add_argument("path", help="a folder or a file (URLs are not read)")
    p.add_argument("--index", type=Path, default=Path(".rag_index"), help="index folder")
    p.add_argument(
        "--encoder",
        action="append",
        default=None,
        type=encoder_name,
        metavar="NAME",
        help=f"{listed(ENCODERS)} or a sentence-transformers model folder; repeat for several "
        "(default: minilm, or the index's own)",
    )
    p.add_argument(
        "--store",
        type=choice("store", STORES),
        default=None,
        metavar="STORE",
        help=f"{listed(STORES)}: where a new index keeps its vectors (default: chroma)",
    )
    p.add_argument(
        "--dsn",
        default=None,
        metavar="URI",
        help="with --store pgvector: the PostgreSQL database (postgresql://...; default: "
        "$RAG_PGVECTOR_DSN, which searching the index needs too)",
    )
    p.add_argument(
        "--situated",
        default=None,
        type=situated_mode,
        metavar="MODE",
        help=f"{listed(SITUATED)} (trained:ADAPTER): how dense encoders embed a chunk with its "
        "context (recorded in the index; default: plain, or what the index has)",
    )
    p.add_argument(
        "--residual",
        type=float,
        nargs="?",
        const=DEFAULT_ALPHA,
        default=None,
        metavar="ALPHA",
        help="with --situated other than plain: dense encoders rank chunks by "
        f"sim(q, s) + ALPHA * sim(q, c) (default {DEFAULT_ALPHA:g}; recorded in the index)",
    )
    p.add_argument(
        "--chunker",
        type=choice("chunker", CHUNKERS),
        default=None,
        metavar="NAME",
        help=f"{listed(CHUNKERS)} (new index: recursive)",
    )
    p.add_argument("--chunk-tokens", type=int, default=None, help="max tokens per chunk")
    p.add_argument("--context-tokens", type=int, default=None, help="context window in tokens")
    p.add_argument(
        "--include", action="append", default=None, help="only files matching this glob; repeatable"
    )
    p.add_argument(
        "--exclude", action="append", default=[], help="skip files matching this glob; repeatable"
    )
    p.add_argument(
        "--prune", action="store_true", help="remove indexed files under PATH that are gone"
    )
    p.add_argument(
        "--follow-links",
        action="store_true",
        help="follow symbolic links that lead outside PATH (default: skip them, with a record)",
    )
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="start the index again with these settings (to change its chunker or store)",
    )
    p.add_argument(
        "--wait-lock",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait at most this long while another process writes to the index "
        "(default: as long as it takes; 0: fail at once)",
    )
    p.add_argument("--no-progress", action="store_true", help="print no progress bar at all")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="parse, chunk and embed on Ray workers, files sharded across them (needs "
        "pip install 'situated-rag[ray]'); ADDRESS: a running cluster (HOST:PORT or "
        "ray://HOST:PORT), default: a local Ray started for the run",
    )
    p.add_argument(
        "--ray-workers",
        type=int,
        default=None,
        metavar="N",
        help="with --ray: at most N shards at once (a local Ray gets N CPUs; default: all CPUs)",
    )
    p.add_argument(
        "--ray-shard-files",
        type=int,
        default=None,
        metavar="N",
        help="with --ray: files per shard, the unit a dead worker's retry redoes and the driver "
        "commits (default: 4)",
    )
    p.set_defaults(func=run)


def requested_config(args: argparse.Namespace) -> IndexConfig:
    """What the flags ask for; a setting left out keeps the existing index's (or the default)."""
    from rag.index import Index, IndexConfig

    stored = None if args.rebuild else Index.stored_config(args.index)
    chunker = args.chunker or (stored.chunker if stored else "recursive")
    options: dict[str, object] = {}
    if stored is not None and stored.chunker == chunker:
        options.update(stored.chunker_options)
    if args.chunk_tokens:
        options["max_tokens"] = args.chunk_tokens
    if args.context_tokens:
        options["context_tokens"] = args.context_tokens
    if stored is not None and args.encoder is None and args.situated is None:
        if args.residual is not None:
            raise ValueError(
                "--residual needs --situated MODE (and --encoder) on an existing index"
            )
        # no encoder flags: the index's own encoders, as they were built
        entries = list(stored.encoders)
    else:
        entries = requested_entries(args)
    return IndexConfig(
        encoders=entries,
        store=args.store or (stored.store if stored else "chroma"),
        chunker=chunker,
        chunker_options=options,
    )


def run(args: argparse.Namespace) -> int:
    from rag.index import Index, IndexConfigError
    from rag.index.admin import discard_unwritten

    path = input_path(args.path)
    if args.ray is None and (args.ray_workers or args.ray_shard_files):
        raise ValueError("--ray-workers and --ray-shard-files need --ray")
    if args.ray is not None:  # before anything is written: a missing extra says what to install
        from rag.distributed import require_ray

        require_ray(local=not args.ray)
    if args.dsn:  # how the index's pgvector stores find their database (never in index.json)
        os.environ["RAG_PGVECTOR_DSN"] = args.dsn
    created = not args.index.exists()  # a new index that stores nothing leaves no folder
    try:
        index = Index(
            args.index, requested_config(args), rebuild=args.rebuild, lock_timeout=args.wait_lock
        )
        with index.writing():  # from reading what the index holds to its last commit
            report = ingest(args, index, path)  # (a writer waited for may change its config)
    except IndexConfigError as exc:
        raise ValueError(
            f"{exc.problem}. Run again with --rebuild to rebuild {args.index} with the new "
            "settings, or choose another --index"
        ) from None
    finally:
        if created:
            discard_unwritten(args.index)
    echo(report.summary())
    files = len(report.ingested) + len(report.unchanged) + len(report.failed)
    if report.seconds > 0:
        rates = [per_second(files, report.seconds, "files")]
        if report.chunks_added:
            rates.append(per_second(report.chunks_added, report.seconds, "chunks"))
        echo(f"{', '.join(rates)}; index: {args.index}")
    return outcome(report, path)


def input_path(text: str) -> Path:
    """The path to ingest; a URL is refused by name (argparse's Path would drop a slash)."""
    if URL.match(text):
        raise ValueError(f"URLs are not read: download the file and pass its path ({text})")
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return path


def outcome(report: IngestReport, path: Path) -> int:
    """1 when the run ingested nothing from PATH (every file failed, or none was found)."""
    if report.ingested or report.unchanged or report.removed:
        return 0
    if report.failed:
        failed = len(report.failed)
        which = "the only file" if failed == 1 else f"all {failed} files"
        print(f"error: nothing ingested: {which} failed", file=sys.stderr)
    else:
        from connectors.directory import EXTENSIONS

        kinds = ", ".join(sorted(EXTENSIONS)) + ", and text files"
        print(
            f"error: nothing ingested: no supported file under {path} (supported: {kinds})",
            file=sys.stderr,
        )
    return 1


def ingest(args: argparse.Namespace, index: Index, path: Path) -> IngestReport:
    from connectors.directory import load_directory, load_file

    if path.is_dir():
        include = args.include or ["**/*"]
        items = load_directory(
            path,
            include=include,
            exclude=args.exclude,
            known_hashes=index.known_hashes(),
            follow_links=args.follow_links,
        )
        prune = str(path.resolve()) if args.prune else None
    else:
        items = iter([load_file(path)])
        prune = None

    bar = FileBar(total_files(args, path), enabled=not args.no_progress)
    if args.ray is not None:
        try:
            return ray_ingest(args, index, path, bar)
        finally:
            bar.close()
    try:
        return index.ingest(
            items, prune_missing_under=prune, progress=bar.file_done, on_chunks=bar.chunks_done
        )
    finally:
        bar.close()


def ray_ingest(args: argparse.Namespace, index: Index, path: Path, bar: FileBar) -> IngestReport:
    from rag.distributed import ray_ingest
    from rag.distributed.driver import DEFAULT_SHARD_FILES

    return ray_ingest(
        index,
        path,
        address=args.ray or None,
        workers=args.ray_workers,
        shard_files=args.ray_shard_files or DEFAULT_SHARD_FILES,
        include=args.include or ["**/*"],
        exclude=args.exclude,
        follow_links=args.follow_links,
        prune=args.prune,
        progress=bar.file_done,
        on_chunks=bar.chunks_done,
    )


def total_files(args: argparse.Namespace, path: Path) -> int | None:
    """How many files the bar counts to (a second walk of the folder, nothing read)."""
    if args.no_progress:
        return None
    if not path.is_dir():
        return 1
    from connectors.directory import count_files

    include = args.include or ["**/*"]
    return count_files(path, include, args.exclude, follow_links=args.follow_links)


def echo(text: str) -> None:
    """Print what the terminal's encoding cannot show (an undecodable name given as PATH or
    --index) as escapes instead of failing after the work is done."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(text.encode(encoding, "backslashreplace").decode(encoding, "replace"))


def requested_entries(args: argparse.Namespace) -> list[EncoderEntry]:
    """The encoders the flags name (default minilm), dense ones with the situated mode."""
    from rag.index import EncoderEntry

    if args.residual is not None and (args.situated or "plain") == "plain":
        raise ValueError(
            "--residual needs a --situated mode other than plain (e.g. --situated prefix): "
            "the residual of plain chunk vectors is the plain vectors themselves"
        )
    entries = []
    for name in args.encoder or ["minilm"]:
        kind = EncoderEntry(name).kind
        if kind == "dense":  # a lexical encoder indexes plain text: no situated mode, no residual
            entries.append(EncoderEntry(name, kind, args.situated or "plain", args.residual))
        else:
            entries.append(EncoderEntry(name, kind))
    return entries
