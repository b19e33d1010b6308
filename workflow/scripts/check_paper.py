"""Print chosen numbers against the paper's, within the config's tolerances (rule check_paper).

Reads the tables as they are now and asks Snakemake whether each is up to date; writes
nothing but its log. Exit status 1 on a FAIL or MISSING only with tracking.check_paper.strict."""
import os
import sys
from pathlib import Path

from specvit.reporting import checklist, dag_status

p = snakemake.params
numbers = checklist.numbers_table(checklist.load_paper(), checklist.Results.read(".", p.groups))
sources = sorted({s for s in numbers["source"] if s} & set(p.targets))
status = dag_status.dag_status(Path(snakemake.scriptdir).resolve().parents[1] / "Snakefile", os.getcwd(),
                               snakemake.config, sources)
check = checklist.compare_with_paper(numbers, p.tolerances, status)
text = checklist.check_text(check)
Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
Path(snakemake.log[0]).write_text(text + "\n")
print(text, flush=True)
if p.strict and (check["result"] != "PASS").any():
    sys.exit(f"check_paper: {int((check['result'] != 'PASS').sum())} numbers outside tolerance or missing "
             "(tracking.check_paper.strict is true)")
