"""One call declares a reported table or figure in all its formats."""
from snakemake.io import is_flagged

from specvit.pipeline.outputs import reported


def report_of(path):
    return path.flags["report"] if is_flagged(path, "report") else None


def test_every_format_is_reported_with_its_name_and_format_label():
    out = reported("results/tables/table3_main", ("csv", "md", "tex"), caption="../report/table3_main.rst",
                   category="Main results", name="Table 3")
    assert list(out) == ["csv", "md", "tex"]
    assert [str(p) for p in out.values()] == [f"results/tables/table3_main.{e}" for e in ("csv", "md", "tex")]
    labels = [report_of(p).labels for p in out.values()]
    assert labels == [{"name": "Table 3", "format": f} for f in ("CSV", "Markdown", "LaTeX")]
    assert {(report_of(p).caption, report_of(p).category, report_of(p).subcategory) for p in out.values()} == {
        ("../report/table3_main.rst", "Main results", None)}


def test_a_subcategory_labels_the_format_only():
    out = reported("results/figures/{figure}", ("pdf", "png"), caption="c.rst", category="Ablations",
                   subcategory="{figure}")
    assert [report_of(p).labels for p in out.values()] == [{"format": "PDF"}, {"format": "PNG"}]
    assert report_of(out["png"]).subcategory == "{figure}"


def test_only_some_formats_reported_and_a_key_prefix():
    out = reported("results/figures/fig_attention_heads", ("pdf", "png"), caption="c.rst", category="P2.1",
                   only=["png"], prefix="heads_")
    assert list(out) == ["heads_pdf", "heads_png"]
    assert report_of(out["heads_pdf"]) is None and out["heads_pdf"] == "results/figures/fig_attention_heads.pdf"
    assert report_of(out["heads_png"]).labels is None and report_of(out["heads_png"]).category == "P2.1"
