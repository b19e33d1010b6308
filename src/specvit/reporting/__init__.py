"""Turning results into the paper: tables (CSV, Markdown, LaTeX), figures (PDF, PNG), Table 3 and the
scaling tables, the paired model differences, the run registry, the generated checklist, provenance
sidecars and the MLflow export.
"""
