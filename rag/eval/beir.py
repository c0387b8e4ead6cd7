"""Load a retrieval data set in the BEIR layout (Thakur et al., 2021, "BEIR: A Heterogeneous
Benchmark for Zero-shot Evaluation of Information Retrieval Models", NeurIPS Datasets track).

A BEIR folder holds::

    corpus.jsonl        {"_id", "title", "text"} one object a line
    queries.jsonl       {"_id", "text"}
    qrels/<split>.tsv   header "query-id<TAB>corpus-id<TAB>score"

Only the queries that appear in the split's qrels are evaluated (as BEIR does); their order is
the order of ``queries.jsonl``, so ``--limit-queries`` picks the same queries every time.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class BeirDataset:
    """One split of a BEIR data set.

    ``corpus`` maps a document id to ``(title, text)``; ``queries`` maps a query id to its text
    and holds only the evaluated queries; ``qrels`` maps a query id to ``{doc_id: relevance}``
    (graded, an int; 0 means judged not relevant).
    """

    name: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str = "test"

    def limit_queries(self, n: int | None) -> BeirDataset:
        """The same data set with only its first ``n`` evaluated queries (all when ``None``)."""
        if n is None or n >= len(self.queries):
            return self
        if n < 1:
            raise ValueError(f"the query limit must be at least 1, got {n}")
        kept = dict(list(self.queries.items())[:n])
        return BeirDataset(
            name=self.name,
            corpus=self.corpus,
            queries=kept,
            qrels={qid: self.qrels[qid] for qid in kept},
            split=self.split,
        )


def available_splits(folder: str | Path) -> list[str]:
    """The split names that have a ``qrels/<split>.tsv`` file in ``folder``, sorted."""
    qrels_dir = Path(folder) / "qrels"
    if not qrels_dir.is_dir():
        return []
    return sorted(p.stem for p in qrels_dir.glob("*.tsv"))


def load_beir(folder: str | Path, split: str = "test", *, name: str | None = None) -> BeirDataset:
    """Read the BEIR folder ``folder`` and keep the queries judged in ``split``.

    Raises ``FileNotFoundError`` naming the missing file (and, for a missing split, the splits
    that exist) and ``ValueError`` for malformed lines or qrels that name unknown queries.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"BEIR data set folder not found: {root}")
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    qrels_path = root / "qrels" / f"{split}.tsv"
    for path in (corpus_path, queries_path):
        if not path.is_file():
            raise FileNotFoundError(f"{root} is not a BEIR folder: {path.name} is missing")
    if not qrels_path.is_file():
        splits = available_splits(root)
        have = ", ".join(splits) if splits else "none (no qrels/*.tsv files)"
        raise FileNotFoundError(
            f"split {split!r} not found: {qrels_path} is missing; available splits: {have}"
        )

    qrels = _read_qrels(qrels_path)
    corpus = {
        str(obj["_id"]): (str(obj.get("title") or ""), str(obj.get("text") or ""))
        for obj in _read_jsonl(corpus_path)
    }
    all_queries = {str(obj["_id"]): str(obj.get("text") or "") for obj in _read_jsonl(queries_path)}
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        raise ValueError(
            f"{qrels_path} judges {len(missing)} query id(s) absent from {queries_path.name}, "
            f"e.g. {missing[:5]}"
        )
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    return BeirDataset(
        name=name or root.resolve().name,
        corpus=corpus,
        queries=queries,
        qrels={qid: qrels[qid] for qid in queries},
        split=split,
    )


def _read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict) or "_id" not in obj:
                raise ValueError(f"{path}:{line_no}: expected a JSON object with an '_id' field")
            yield obj


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, None)
        if header is None:
            return qrels
        if [h.strip() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise ValueError(
                f"{path}: expected the header 'query-id<TAB>corpus-id<TAB>score', got {header!r}"
            )
        for line_no, row in enumerate(rows, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 3:
                raise ValueError(f"{path}:{line_no}: expected 3 tab-separated fields, got {row!r}")
            try:
                score = int(float(row[2]))
            except ValueError as exc:
                raise ValueError(f"{path}:{line_no}: score {row[2]!r} is not a number") from exc
            qrels.setdefault(row[0], {})[row[1]] = score
    return qrels
