"""A persistent index folder: documents -> chunks -> one store per encoder.

:class:`Index` is the facade (see :mod:`rag.index.folder` for the folder's layout); what it is
built with lives in :mod:`rag.index.config`, its record of documents in
:mod:`rag.index.docstore`, one ingest run in :mod:`rag.index.ingest`, and the one-writer-at-a-time
lock every write holds in :mod:`rag.index.lock`.
"""

from rag.index.config import FORMAT_VERSION, EncoderEntry, IndexConfig, IndexConfigError
from rag.index.folder import Index, collection_name
from rag.index.ingest import IngestReport
from rag.index.lock import IndexLockedError, WriterLock

__all__ = [
    "FORMAT_VERSION",
    "EncoderEntry",
    "Index",
    "IndexConfig",
    "IndexConfigError",
    "IndexLockedError",
    "IngestReport",
    "WriterLock",
    "collection_name",
]
