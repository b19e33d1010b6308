"""Outputs of a rule that go into the HTML report (``snakemake --report``): one call declares a table
or figure in all its formats, with one caption and category."""
from __future__ import annotations

FORMAT_LABELS = {"csv": "CSV", "md": "Markdown", "tex": "LaTeX", "pdf": "PDF", "png": "PNG"}


def reported(stem: str, formats, *, caption: str, category: str, subcategory: str | None = None,
             name: str | None = None, only=None, prefix: str = "") -> dict:
    """{``prefix`` + format: output file} for ``stem``.<format> of each format, as a rule's outputs.

    The files of ``only`` (default: every format) are marked for the report with ``caption``,
    ``category`` and ``subcategory``, and labelled {name, format} where a ``name`` or a subcategory
    groups them; the other formats are plain outputs.
    """
    from snakemake.io import report

    out = {}
    for fmt in formats:
        path = f"{stem}.{fmt}"
        if only is not None and fmt not in only:
            out[prefix + fmt] = path
            continue
        labels = None
        if name is not None or subcategory is not None:
            labels = {**({"name": name} if name is not None else {}), "format": FORMAT_LABELS[fmt]}
        out[prefix + fmt] = report(path, caption=caption, category=category, subcategory=subcategory, labels=labels)
    return out
