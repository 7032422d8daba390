"""Exporters: evalkit tasks written out for other harnesses (``evalkit export``).

An exporter sees tasks, not requests, so it sits above the backends (DESIGN.md section 2).
"""
