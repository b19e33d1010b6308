"""Tables of the paper: one DataFrame written three ways, CSV (machines), Markdown (people), LaTeX (the paper).

The CSV keeps full precision (it is the single source of the numbers; figures read it);
Markdown and LaTeX round to ``digits`` for reading.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from specvit.reporting import provenance
from specvit.runtime.io import atomic_path, write_csv


def _fmt(value, digits: int) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(df: pd.DataFrame, digits: int = 3, caption: str | None = None) -> str:
    lines = [f"*{caption}*", ""] if caption else []
    lines.append("| " + " | ".join(map(str, df.columns)) + " |")
    lines.append("|" + "|".join("---" for _ in df.columns) + "|")
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, digits) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        text = text.replace(a, b)
    return text


def to_latex(df: pd.DataFrame, digits: int = 3, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``)."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in df.columns)
    out = [r"\begin{table}", r"\centering"]
    if caption:
        out.append(rf"\caption{{{_tex_escape(caption)}}}")
    if label:
        out.append(rf"\label{{{label}}}")
    out += [rf"\begin{{tabular}}{{{align}}}", r"\toprule",
            " & ".join(_tex_escape(str(c)) for c in df.columns) + r" \\", r"\midrule"]
    for row in df.itertuples(index=False):
        out.append(" & ".join(_tex_escape(_fmt(v, digits)) for v in row) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def write_table(df: pd.DataFrame, csv_path, md_path=None, tex_path=None, caption: str | None = None,
                digits: int = 3, label: str | None = None) -> None:
    """Write ``df`` as CSV, and as Markdown / LaTeX where paths are given (all atomically); in a tracked
    workflow job (``specvit.reporting.provenance.track``) also the provenance sidecar ``<stem>.prov.json``."""
    write_csv(df, csv_path)
    for path, text in ((md_path, lambda: to_markdown(df, digits, caption)),
                       (tex_path, lambda: to_latex(df, digits, caption, label or f"tab:{Path(csv_path).stem}"))):
        if path is not None:
            with atomic_path(path) as tmp:
                tmp.write_text(text())
    provenance.stamp(*(p for p in (csv_path, md_path, tex_path) if p is not None))
