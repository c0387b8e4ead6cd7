"""Ingestion on a Ray cluster: files sharded across Ray tasks, the manifest kept by the driver.

:func:`ray_ingest` (``rag ingest PATH --ray [ADDRESS]``) is :meth:`rag.index.Index.ingest`
with the parsing, chunking and embedding done by Ray workers (:mod:`rag.distributed.worker`);
the driver (:mod:`rag.distributed.driver`) commits what they return through the same
:class:`rag.index.ingest.Ingestion`, so the index is the one a local ingest builds. Ray is
optional (``pip install 'situated-rag[ray]'``) and imported only when a run starts.
"""

from rag.distributed.driver import ray_ingest, require_ray

__all__ = ["ray_ingest", "require_ray"]
