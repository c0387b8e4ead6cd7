"""ChromaStore specifics: collection naming, cosine space, batching, lazy import, no network."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rag.stores import ChromaStore, get_store
from rag.stores._codec import safe_collection_name
from rag.types import Chunk

ROOT = Path(__file__).resolve().parents[1]
CHROMA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]")


def unit_vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chunks(n: int, prefix: str = "c") -> list[Chunk]:
    return [
        Chunk(id=f"{prefix}{i}", doc_id="d", text=f"t{i}", start=i, end=i + 1) for i in range(n)
    ]


def test_collection_names_are_valid_and_distinct() -> None:
    assert safe_collection_name("minilm") == "minilm"
    assert safe_collection_name("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    names = [
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-transformers_all-MiniLM-L6-v2",
        "ab",
        "x",
        "-lead",
        "a..b",
        "é" * 600,
        "",
        "org/model",
        "org_model",
    ]
    mapped = [safe_collection_name(n) for n in names]
    assert len(set(mapped)) == len(names)
    for m in mapped:
        assert CHROMA_NAME.fullmatch(m) and ".." not in m, m


def test_one_collection_per_encoder_name(tmp_path: Path) -> None:
    with ChromaStore(tmp_path, "org/model") as a, ChromaStore(tmp_path, "org_model") as b:
        a.add(chunks(3), unit_vectors(3))
        b.add(chunks(1), unit_vectors(1))
        assert (a.count(), b.count()) == (3, 1)
        assert a._collection.metadata["rag_encoder"] == "org/model"


def test_a_collection_in_another_distance_space_is_refused(tmp_path: Path) -> None:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(
        str(tmp_path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
    )
    client.create_collection(
        "l2-made", embedding_function=None, configuration={"hnsw": {"space": "l2"}}
    )
    client.close()
    with pytest.raises(ValueError, match="'l2' distance"):
        ChromaStore(tmp_path, "l2-made")


def test_hnsw_parameters_apply_to_new_collections(tmp_path: Path) -> None:
    with ChromaStore(tmp_path, "tuned", hnsw={"ef_search": 321}) as tuned:
        hnsw = tuned._collection.configuration_json["hnsw"]
        assert (hnsw["space"], hnsw["ef_search"], hnsw["ef_construction"]) == ("cosine", 321, 200)
    with pytest.raises(ValueError, match="cosine"):
        ChromaStore(tmp_path, "other", hnsw={"space": "ip"})


def test_every_call_is_split_into_batches(tmp_path: Path) -> None:
    store = get_store("chroma", path=tmp_path, collection="batched", batch_size=7)
    try:
        vectors = unit_vectors(30)
        store.add(chunks(30), vectors)
        assert store.count() == 30
        ids = [f"c{i}" for i in reversed(range(30))]
        assert [c.id for c in store.get(ids)] == ids
        assert store.existing_ids(ids + ["nope"]) == set(ids)
        store.delete(ids[:20])
        assert store.count() == 10
        found = store.search_many(vectors, k=3)  # 30 queries in 5 batches
        assert len(found) == 30 and found[5][0][0].id == "c5"
    finally:
        store.close()


def test_importing_the_stores_does_not_import_chromadb() -> None:
    code = "import sys, rag.stores; print('chromadb' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_embedded_chroma_opens_no_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python-level check: no socket is created, connected or resolved (telemetry included)."""
    calls: list[str] = []
    real_socket = socket.socket

    class Recording(real_socket):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            calls.append(f"socket{args}")
            super().__init__(*args, **kwargs)

    def record(name: str):
        def fn(*args: object, **kwargs: object) -> None:
            calls.append(f"{name}{args}")
            raise OSError("no network in this test")

        return fn

    monkeypatch.setattr(socket, "socket", Recording)
    monkeypatch.setattr(socket, "getaddrinfo", record("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", record("create_connection"))
    with ChromaStore(tmp_path, "quiet") as store:
        store.add(chunks(20), unit_vectors(20))
        store.search(unit_vectors(1)[0], k=3)
        store.delete(["c1"])
    assert calls == []


STRACE_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from rag.stores import ChromaStore
    from rag.types import Chunk

    with ChromaStore(sys.argv[1], "traced") as store:
        store.add([Chunk(id=f"c{i}", doc_id="d", text="t", start=0, end=1) for i in range(1500)],
                  np.eye(1500, 16, dtype=np.float32) + 0.01)
        store.search(np.ones(16, dtype=np.float32) / 4, k=5)
    """
)


def _strace() -> str:
    path = shutil.which("strace")
    if path is None:
        pytest.skip("strace is not installed")
    if subprocess.run([path, "-f", "-o", "/dev/null", "true"], capture_output=True).returncode:
        pytest.skip("strace cannot trace here (ptrace not permitted)")
    return path


def _outside_loopback(trace: str) -> list[str]:
    """connect() calls to anything but 127.0.0.1 / ::1 (a DNS query would be port 53)."""
    return [
        line
        for line in trace.splitlines()
        if "connect(" in line
        and "AF_INET" in line  # also matches AF_INET6
        and '"127.0.0.1"' not in line
        and '"::1"' not in line
    ]


@pytest.mark.slow
def test_embedded_chroma_makes_no_network_syscall(tmp_path: Path) -> None:
    """OS-level check of the embedded client (Rust core included): no inet socket at all."""
    strace = _strace()
    script = tmp_path / "use_chroma.py"
    script.write_text(STRACE_SCRIPT)
    log = tmp_path / "trace.txt"
    subprocess.run(
        [
            strace,
            "-f",
            "-e",
            "trace=socket,connect",
            "-o",
            str(log),
            sys.executable,
            str(script),
            str(tmp_path / "db"),
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    trace = log.read_text()
    assert "+++ exited with 0 +++" in trace  # strace did record the run
    assert "AF_INET" not in trace, [ln for ln in trace.splitlines() if "AF_INET" in ln]


@pytest.mark.slow
@pytest.mark.network
def test_chroma_server_connects_nowhere(tmp_path: Path) -> None:
    """OS-level check of ``chroma run``: it listens on loopback and never connects out."""
    strace = _strace()
    cli = Path(sys.executable).with_name("chroma")
    if not cli.exists():
        pytest.skip("the `chroma` CLI is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "trace.txt"
    proc = subprocess.Popen(
        [
            strace,
            "-f",
            "-e",
            "trace=connect",
            "-o",
            str(log),
            str(cli),
            "run",
            "--path",
            str(tmp_path / "db"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so the server under strace can be stopped with its tracer
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                store = ChromaStore.http("127.0.0.1", port, "traced")
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        store.add(chunks(50, "h"), unit_vectors(50))
        assert store.search(unit_vectors(50)[7], k=1)[0][0].id == "h7"
        store.close()
        time.sleep(1.0)  # give any background reporter a moment to try
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    trace = log.read_text()
    assert "+++" in trace  # strace did record the run
    assert _outside_loopback(trace) == []
