"""Outputs of a rule that go into the HTML report (``snakemake --report``): one call declares a table
or figure in all its formats, with one caption and category."""
from __future__ import annotations

# The report's sections in the paper's order. Snakemake lists sections by name, hence the numbers;
# a colon would break its links.
SECTIONS = {
    "data": "1. Synthetic data and calibration",
    "ceiling": "2. Information ceiling (§5)",
    "main": "3. Main results (§6.2, Table 3, Figure 1)",
    "scaling": "4. Data scaling (§6.4, Figure 3)",
    "ablations": "5. Ablations (§6.6 tokenization, P1.1–P1.4)",
    "attribution": "6. Interpretability (P2.1)",
    "pretrain": "7. Pre-train and fine-tune (P2.2)",
    "shift": "8. Domain shift (P2.3)",
    "tracking": "9. Reproducibility (appendix)",
}
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
