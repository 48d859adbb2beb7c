"""Keras 3 and tf-keras: layers, kernel decisions, coverage, cross-backend runs, strategies, bench builders."""
