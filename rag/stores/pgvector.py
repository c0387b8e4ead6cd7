"""PostgreSQL with the pgvector extension as the vector store (psycopg 3).

One table per encoder: a row per chunk (its id the primary key; doc id, text, offsets, source,
title, section, page, context span, metadata) and ``embedding vector(dim)``, with an HNSW index
in cosine distance (``vector_cosine_ops``). Scores are the cosine similarity ``1 - distance``.
Every write is one transaction: ``add`` is an idempotent upsert (``INSERT ... ON CONFLICT (id)
DO UPDATE``) and :meth:`PgVectorStore.replace_documents` deletes a document's chunks and writes
the new ones atomically, so a killed ingest leaves either the old or the new chunks.

PostgreSQL text cannot hold NUL, so text columns escape it (U+E000 is the escape character);
section and metadata are JSON (``json``, kept as written). Filters are pushed into SQL: source and
type conditions resolved to the table's matching sources (``source = ANY(...)``), page ranges as
comparisons; section prefixes are checked here on over-fetched candidates, or exactly among the
rows SQL kept when too few of those match. A filtered HNSW scan can return fewer than ``k`` rows
(pgvector filters after the index scan), so those queries fall back to an exact scan.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.base import Store
from rag.stores._codec import as_matrix, check_k, last_occurrences, metadata_json, one_query
from rag.stores._filters import sql_where
from rag.types import Chunk
from rag.types.filters import Where

TABLE_COMMENT = "rag pgvector store, chunk format 1"
DEFAULT_EF_SEARCH = 200  # pgvector's 40 misses neighbours; 200 as for Chroma (see chroma.py)
MAX_EF_SEARCH = 1000  # pgvector's upper bound; larger k scan exactly
_ESC = "\ue000"
_UNESCAPE = re.compile(_ESC + "(.)", re.DOTALL)
_COLUMNS = (
    "id, doc_id, text, start_at, end_at, source, title, section, page, context, "
    "context_start, context_end, metadata"
)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ImportError(
            "PgVectorStore needs psycopg 3: pip install 'psycopg[binary]' "
            "(or pip install 'situated-rag[pgvector]')"
        ) from exc
    return psycopg


def esc(text: str) -> str:
    """``text`` without NUL (which PostgreSQL text refuses); :func:`unesc` restores it."""
    if _ESC not in text and "\x00" not in text:
        return text
    return text.replace(_ESC, _ESC + _ESC).replace("\x00", _ESC + "0")


def unesc(text: str) -> str:
    if _ESC not in text:
        return text
    return _UNESCAPE.sub(lambda m: "\x00" if m.group(1) == "0" else m.group(1), text)


def table_name(name: str) -> str:
    """A PostgreSQL table name (at most 63 bytes, with room for index suffixes) for ``name``."""
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,50}", name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")[:36] or "encoder"
    return f"{cleaned}_{hashlib.sha256(name.encode('utf-8')).hexdigest()[:10]}"


def _vector_text(row: np.ndarray) -> str:
    # repr of each float32 (as a double) parses back to the same float32 in pgvector
    return "[" + ",".join(map(repr, row.tolist())) + "]"


def _row(chunk: Chunk, vector: np.ndarray) -> tuple[Any, ...]:
    return (
        esc(chunk.id),
        esc(chunk.doc_id),
        esc(chunk.text),
        chunk.start,
        chunk.end,
        esc(chunk.source),
        None if chunk.title is None else esc(chunk.title),
        json.dumps(list(chunk.section), ensure_ascii=False),
        chunk.page,
        esc(chunk.context),
        chunk.context_start,
        chunk.context_end,
        metadata_json(chunk),
        _vector_text(vector),
    )


def _chunk(row: Sequence[Any]) -> Chunk:
    return Chunk(
        id=unesc(row[0]),
        doc_id=unesc(row[1]),
        text=unesc(row[2]),
        start=row[3],
        end=row[4],
        source=unesc(row[5]),
        title=None if row[6] is None else unesc(row[6]),
        section=tuple(row[7]),
        page=row[8],
        context=unesc(row[9]),
        context_start=row[10],
        context_end=row[11],
        metadata=row[12],
    )


class PgVectorStore(Store):
    """One PostgreSQL table holding one encoder's chunks and vectors.

    ``dsn`` is a libpq connection string or URI (``postgresql://user:pw@host/db``, or
    ``...?host=/socket/dir``); ``table`` the table name (an encoder name is mapped to a valid
    one); ``dim`` the vector size, read from an existing table or taken from the first ``add``.
    The extension is created when missing (``CREATE EXTENSION vector``, which needs the right
    to do so, once per database); a table this store did not create is refused, never written. ``ef_search`` is HNSW's candidate list size.
    """

    def __init__(
        self,
        dsn: str,
        table: str = "default",
        dim: int | None = None,
        *,
        ef_search: int = DEFAULT_EF_SEARCH,
    ) -> None:
        psycopg = _psycopg()
        self._sql = psycopg.sql
        self._conn = psycopg.connect(dsn, autocommit=True)  # each method opens its transaction
        self.name, self.table = table, table_name(table)
        self.ef_search = ef_search
        self._ident = self._sql.Identifier(self.table)
        try:
            if not self._conn.execute(
                "SELECT 1 FROM pg_extension WHERE extname = 'vector'"
            ).fetchone():
                self._conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            self._dim = self._stored_dim()
        except Exception:
            self._conn.close()
            raise
        if self._dim is not None and dim is not None and dim != self._dim:
            raise ValueError(f"table {self.table!r} holds {self._dim}-d vectors, not {dim}-d")
        if self._dim is None and dim is not None:
            self._create(dim)

    # -- schema --------------------------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        return self._dim

    def _q(self, text: str) -> Any:
        """``text`` with ``{t}`` (the table) and ``{i}`` (its HNSW index) filled in."""
        return self._sql.SQL(text).format(
            t=self._ident, i=self._sql.Identifier(f"{self.table}_hnsw")
        )

    def _stored_dim(self) -> int | None:
        row = self._conn.execute(
            "SELECT c.oid IS NOT NULL, obj_description(c.oid, 'pg_class'), a.atttypmod "
            "FROM (SELECT to_regclass(%s) AS oid) c "
            "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'embedding'",
            (self._ident.as_string(self._conn),),
        ).fetchone()
        if not row[0]:
            return None
        if row[1] != TABLE_COMMENT:  # someone else's table: never write into it
            raise ValueError(
                f"table {self.table!r} was not written by this version of rag.stores "
                f"(comment {row[1]!r}, expected {TABLE_COMMENT!r}); use another table name"
            )
        return int(row[2])

    def _create(self, dim: int) -> None:
        with self._conn.transaction():
            # one creator at a time: CREATE ... IF NOT EXISTS races on the catalogue otherwise
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
            self._conn.execute(
                self._q(
                    "CREATE TABLE IF NOT EXISTS {t} (id text PRIMARY KEY, doc_id text NOT NULL, "
                    "text text NOT NULL, start_at integer NOT NULL, end_at integer NOT NULL, "
                    "source text NOT NULL, title text, section json NOT NULL, page integer, "
                    "context text NOT NULL, context_start integer NOT NULL, "
                    "context_end integer NOT NULL, metadata json NOT NULL, "
                    f"embedding vector({int(dim)}) NOT NULL)"
                )
            )
            for column in ("doc_id", "source", "page"):
                index = self._sql.Identifier(f"{self.table}_{column}")
                self._conn.execute(
                    self._sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                        index, self._ident, self._sql.Identifier(column)
                    )
                )
            self._conn.execute(
                self._q(
                    "CREATE INDEX IF NOT EXISTS {i} ON {t} USING hnsw (embedding vector_cosine_ops)"
                )
            )
            self._conn.execute(
                self._sql.SQL("COMMENT ON TABLE {} IS {}").format(
                    self._ident, self._sql.Literal(TABLE_COMMENT)
                )
            )
        self._dim = self._stored_dim()

    def drop(self) -> None:
        """Remove the table and everything in it."""
        self._conn.execute(self._q("DROP TABLE IF EXISTS {t}"))
        self._dim = None

    # -- writes --------------------------------------------------------------------------------

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        rows = self._rows(chunks, vectors)
        if rows:
            with self._conn.transaction():
                self._upsert(rows)

    def replace_documents(
        self, doc_ids: Sequence[str], chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None:
        """Delete every chunk of ``doc_ids`` and add ``chunks`` in one transaction."""
        rows = self._rows(chunks, vectors)
        with self._conn.transaction():
            self._delete_where("doc_id", doc_ids)
            if rows:
                self._upsert(rows)

    def _rows(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> list[tuple[Any, ...]]:
        """The rows to write, every input checked before anything changes."""
        if len(chunks) == 0:
            return []
        matrix = as_matrix(vectors, rows=len(chunks))
        if self._dim is not None and matrix.shape[1] != self._dim:
            raise ValueError(f"vectors have {matrix.shape[1]} dimensions, the store {self._dim}")
        keep = last_occurrences(chunks)  # ON CONFLICT cannot update one row twice per statement
        rows = [_row(chunks[i], matrix[i]) for i in keep]
        if self._dim is None:
            self._create(matrix.shape[1])
        return rows

    def _upsert(self, rows: list[tuple[Any, ...]]) -> None:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in [*_COLUMNS.split(", ")[1:], "embedding"])
        statement = self._q(
            f"INSERT INTO {{t}} ({_COLUMNS}, embedding) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s::json, %s, %s, %s, %s, %s::json, %s::vector) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}"
        )
        with self._conn.cursor() as cur:
            cur.executemany(statement, rows)

    def delete(self, ids: Sequence[str]) -> None:
        with self._conn.transaction():
            self._delete_where("id", ids)

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        with self._conn.transaction():
            self._delete_where("doc_id", doc_ids)

    def _delete_where(self, column: str, values: Sequence[str]) -> None:
        if not self._present() or not values:
            return
        self._conn.execute(
            self._sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                self._ident, self._sql.Identifier(column)
            ),
            ([esc(v) for v in dict.fromkeys(values)],),
        )

    # -- reads ---------------------------------------------------------------------------------

    def count(self) -> int:
        if not self._present():
            return 0
        return int(self._conn.execute(self._q("SELECT count(*) FROM {t}")).fetchone()[0])

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        if not self._present() or not ids:
            return set()
        got = self._conn.execute(
            self._q("SELECT id FROM {t} WHERE id = ANY(%s)"), ([esc(i) for i in set(ids)],)
        )
        return {unesc(r[0]) for r in got}

    def ids(self) -> list[str]:
        if not self._present():
            return []
        return [unesc(r[0]) for r in self._conn.execute(self._q("SELECT id FROM {t} ORDER BY id"))]

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        if not self._present() or not ids:
            return []
        got = self._conn.execute(
            self._q(f"SELECT {_COLUMNS} FROM {{t}} WHERE id = ANY(%s)"),
            ([esc(i) for i in set(ids)],),
        )
        by_id = {c.id: c for c in map(_chunk, got)}
        return [by_id[i] for i in ids if i in by_id]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of the known ``ids`` (for MMR's similarities)."""
        if not self._present() or not ids:
            return {}
        got = self._conn.execute(
            self._q("SELECT id, embedding::text FROM {t} WHERE id = ANY(%s)"),
            ([esc(i) for i in set(ids)],),
        )
        return {unesc(i): np.asarray(json.loads(v), dtype=np.float32) for i, v in got}

    def search(
        self, vector: np.ndarray, k: int = 10, *, where: Where | None = None
    ) -> list[tuple[Chunk, float]]:
        return self.search_many(one_query(vector), k, where=where)[0]

    def search_many(
        self, vectors: np.ndarray, k: int = 10, *, where: Where | None = None
    ) -> list[list[tuple[Chunk, float]]]:
        check_k(k)
        queries = as_matrix(vectors)
        if not self._present():
            return [[] for _ in range(queries.shape[0])]
        if queries.shape[1] != self._dim:
            raise ValueError(f"query has {queries.shape[1]} dimensions, the store {self._dim}")
        if where is not None and where.on_source and where.resolved is None:
            sources = self._conn.execute(self._q("SELECT DISTINCT source FROM {t}"))
            where = where.resolve(unesc(r[0]) for r in sources)
        return [self._search_one(q, k, where) for q in queries]

    def _search_one(
        self, query: np.ndarray, k: int, where: Where | None
    ) -> list[tuple[Chunk, float]]:
        clause, params = sql_where(where, esc)
        if clause is None:
            return []  # contradictory conditions, or no source matches
        if where is None or not where.sections:
            hits = self._nearest(query, k, clause, params, exact=False)
            if len(hits) >= k or (where is None and len(hits) == self.count()):
                return hits
            # pgvector filters what HNSW found (or the graph lost rows): sort them all instead
            return self._nearest(query, k, clause, params, exact=True)
        found = self._nearest(query, max(4 * k, 50), clause, params, exact=False)
        kept = [(c, s) for c, s in found if where.section_matches(c.section)]
        if len(kept) >= k:
            return kept[:k]
        rows = self._conn.execute(self._q(f"SELECT id, section FROM {{t}} WHERE {clause}"), params)
        ids = [i for i, section in rows if where.section_matches(section)]
        if not ids:
            return []
        return self._nearest(query, k, "id = ANY(%s)", [ids], exact=True)

    def _nearest(
        self, query: np.ndarray, k: int, clause: str, params: list[Any], *, exact: bool
    ) -> list[tuple[Chunk, float]]:
        # HNSW serves only ORDER BY embedding <=> constant: "+ 0" sorts every row SQL kept
        order = "(embedding <=> %s::vector) + 0" if exact or k > MAX_EF_SEARCH else None
        with self._conn.transaction():
            ef = min(MAX_EF_SEARCH, max(self.ef_search, k))
            self._conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
            got = self._conn.execute(
                self._q(
                    f"SELECT {_COLUMNS}, 1 - (embedding <=> %s::vector) FROM {{t}} "
                    f"WHERE {clause} ORDER BY {order or 'embedding <=> %s::vector'} LIMIT %s"
                ),
                [_vector_text(query), *params, _vector_text(query), k],
            )
            return [(_chunk(r), float(r[13])) for r in got]

    def _present(self) -> bool:
        """Whether the table exists, looking again when it did not: another process (a Ray
        worker, a writer beside a reader) may have created it since this store opened."""
        if self._dim is None:
            self._dim = self._stored_dim()
        return self._dim is not None

    def refresh(self) -> bool:
        """Look again for the table when it did not exist (another process may have made it);
        rows other processes committed are always seen. True when the table was found now."""
        if self._dim is not None:
            return False
        self._dim = self._stored_dim()
        return self._dim is not None

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PgVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
