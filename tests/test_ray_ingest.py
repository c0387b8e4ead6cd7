"""Distributed ingestion on Ray (rag.distributed): the index a local ingest builds, and one that
survives a killed worker (its shard is retried) and a killed driver (the next run completes it).

One local Ray cluster for the module (a head and two worker processes on loopback, telemetry
off), stopped at the end; tests skip, saying why, when Ray is not installed. Subprocesses are
bounded by timeouts and the fault hooks by deadlines.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from connectors.directory import load_directory
from rag.cli import main
from rag.index import Index
from rag.index.check import check
from tests.pg_fixtures import pg_dsn  # noqa: F401 - the session's PostgreSQL

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
]


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    from rag.distributed import require_ray

    try:
        ray = require_ray(local=True)  # loopback and no telemetry, set before Ray is imported
    except ImportError:
        pytest.skip("Ray is not installed (pip install 'situated-rag[ray]')")
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 << 20
    )
    try:
        address = ray.get_runtime_context().gcs_address
        assert address.startswith("127.0.0.1:"), address
        yield address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten small markdown files (a few chunks each), one in a subfolder, and one binary file."""
    folder = tmp_path_factory.mktemp("docs")
    (folder / "sub").mkdir()
    for n in range(10):
        paragraphs = [
            f"# Part {n}.{p}\n\n"
            + " ".join(WORDS[(n * 7 + p * 3 + i) % len(WORDS)] for i in range(90))
            for p in range(3)
        ]
        where = folder / "sub" if n == 9 else folder
        (where / f"doc{n}.md").write_text("\n\n".join(paragraphs), "utf-8")
    (folder / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    return folder


def local_index(root: Path, docs: Path, encoders: list[str], store: str = "memory") -> Index:
    index = Index.create(root, encoders, store=store)
    index.ingest(load_directory(docs, known_hashes=index.known_hashes()))
    return index


def chunk_ids(index: Index) -> dict[str, list[str]]:
    return {doc: e["chunk_ids"] for doc, e in index.manifest["files"].items()}


def assert_same_index(got: Index, want: Index) -> None:
    assert chunk_ids(got) == chunk_ids(want)
    ids = sorted(i for e in chunk_ids(want).values() for i in e)
    for entry in want.config.encoders:
        assert sorted(got.store(entry.name).ids()) == ids
        if entry.kind == "dense":
            have, expected = got.store(entry.name).vectors(ids), want.store(entry.name).vectors(ids)
            for i in ids:
                np.testing.assert_allclose(have[i], expected[i], rtol=1e-5, atol=1e-6)
    result = check(got)
    assert result.ok, result.lines()


def test_ray_ingest_builds_the_local_index(
    ray_address: str, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.distributed import ray_ingest

    # float32 torch, which the driver passes on to its workers: the default backend may be bf16,
    # whose vectors depend on how texts are batched (padding) by up to ~5e-4 (cosine > 0.9999),
    # and a shard's batches are not a local run's
    monkeypatch.setenv("RAG_BACKEND", "torch")

    want = local_index(tmp_path / "local", docs, ["minilm", "bm25"], store="chroma")
    log = tmp_path / "shards.log"

    def record(number: int) -> None:  # which worker process ran which shard
        with open(log, "a") as fh:
            fh.write(f"{number} {os.getpid()}\n")

    index = Index.create(tmp_path / "ray", ["minilm", "bm25"], store="chroma")
    report = ray_ingest(index, docs, workers=2, shard_files=2, shard_hook=record)
    assert len(report.ingested) == 10 and [e.path for e in report.failed] == [
        str(docs.resolve() / "image.md")
    ]
    assert_same_index(Index(tmp_path / "ray"), want)
    shards = dict(line.split() for line in log.read_text().splitlines())
    assert sorted(map(int, shards)) == list(range(6))  # 11 files, 2 a shard
    assert len(set(shards.values())) == 2  # two worker processes shared them
    again = ray_ingest(Index(tmp_path / "ray"), docs, workers=2)
    assert (len(again.unchanged), again.ingested, again.chunks_embedded) == (10, [], 0)


@pytest.mark.parametrize("store", ["memory", "pgvector"])
def test_a_killed_worker_has_its_shard_retried(
    ray_address: str,
    docs: Path,
    tmp_path: Path,
    store: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rag.distributed import ray_ingest

    if store == "pgvector":
        monkeypatch.setenv("RAG_PGVECTOR_DSN", request.getfixturevalue("pg_dsn"))
    want = local_index(tmp_path / "local", docs, ["wordllama"])
    killed = tmp_path / "killed"

    def driver_embeds(self: Index, entry: object, show: object = None) -> object:
        def embed(chunks: object) -> object:
            raise AssertionError("the workers embed; the driver must not")

        return embed

    def die_once(number: int) -> None:  # mid-shard: vectors made (and written, pgvector)
        if number == 1 and not killed.exists():
            killed.write_text(str(os.getpid()))
            os._exit(1)  # a real process death, not an exception

    index = Index.create(tmp_path / "ray", ["wordllama"], store=store)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Index, "chunk_embedder", driver_embeds)  # in this process only
        report = ray_ingest(index, docs, workers=2, shard_files=3, shard_hook=die_once)
    assert killed.exists() and len(report.ingested) == 10
    assert_same_index(Index(tmp_path / "ray"), want)


# A driver that a worker kills (SIGKILL) once shard 2's vectors are made (and, with pgvector,
# in the database) and at least one shard is committed: shard 2 is never committed.
DRIVER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from pathlib import Path

    from rag.distributed import ray_ingest
    from rag.index import Index

    address, root, docs, store = sys.argv[1:5]
    driver = os.getpid()

    def kill_driver(number):
        if number != 2:
            return
        manifest, deadline = Path(root) / "manifest.json", time.monotonic() + 60
        while time.monotonic() < deadline:
            if manifest.exists() and json.loads(manifest.read_text())["files"]:
                break
            time.sleep(0.05)
        os.kill(driver, signal.SIGKILL)
        time.sleep(30)

    index = Index.create(root, ["wordllama"], store=store)
    ray_ingest(index, docs, address=address, workers=2, shard_files=2, shard_hook=kill_driver)
    """
)


def test_a_killed_driver_leaves_a_consistent_index_the_next_run_completes(
    ray_address: str,
    docs: Path,
    tmp_path: Path,
    pg_dsn: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAG_PGVECTOR_DSN", pg_dsn)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    root, docs = tmp_path / "ray", shutil.copytree(docs, tmp_path / "docs")
    args = [ray_address, str(root), str(docs), "pgvector"]
    killed = subprocess.run(
        [sys.executable, "-c", DRIVER, *args], env=env, timeout=180, capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert (root / "ray_ingest.json").exists()  # the unfinished run's marker
    after_kill = check(Index(root))
    committed = json.loads((root / "manifest.json").read_text())["files"]
    assert 0 < len(committed) < 10
    assert [s.missing for s in after_kill.stores] == [[]]  # what the manifest names is there
    orphans = after_kill.stores[0].orphans  # shard 2's rows (doc4, doc5), written by its worker
    assert orphans
    (docs / "doc4.md").unlink()  # gone before the re-run: only the sweep removes its rows

    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ingest", str(docs), "--index", str(root)]
        + ["--ray", ray_address, "--ray-workers", "2", "--no-progress"],
        env=env,
        timeout=180,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ingested" in done.stdout and not (root / "ray_ingest.json").exists()
    index = Index(root)
    assert_same_index(index, local_index(tmp_path / "local", docs, ["wordllama"]))
    print(  # noqa: T201 - the figures of the fault-injection run, with -s
        f"killed driver: {len(committed)} files committed, {len(orphans)} orphan rows; "
        f"re-run: {len(index.manifest['files'])} files, {index.docstore.chunk_count()} chunks"
    )


def test_without_ray_the_flag_says_what_to_install(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    code = main(["ingest", str(docs), "--index", str(tmp_path / "i"), "--ray", "--no-progress"])
    assert code != 0
    assert "pip install 'situated-rag[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()  # refused before anything was written
    code = main(["ingest", str(docs), "--index", str(tmp_path / "i"), "--ray-workers", "2"])
    assert code != 0 and "need --ray" in capsys.readouterr().err
