"""Training a situated encoder's low-rank adapter on a corpus (``rag tune``, the shipped adapter).

Light to import; torch loads when training starts.
"""
