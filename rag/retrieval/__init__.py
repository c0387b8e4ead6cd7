"""Retrieval over several indexes: fusion of ranked lists and score normalisation."""
