"""The reason of a failed job on the terminal: the error at the end of its log (specvit.pipeline.failures)."""
from types import SimpleNamespace

from specvit.pipeline.failures import TAIL, error_lines, failed_jobs, failure_report

CHAINED = """\
loading the model
Traceback (most recent call last):
  File "x.py", line 3, in <module>
    open("m")
FileNotFoundError: m

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/tmp/.snakemake/scripts/tmp.validate_split.py", line 14, in <module>
    summary = validate_file(snakemake.input.h5)
              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
specvit.data.contract.DataContractError: /d/t.h5: 2 problems:
  - dataset 'error' has 1 values <= 0 in row 7 (first at row 7, pixel 3); expected strictly positive 1-sigma noise
  - dataset 'labels/logg' has 2 non-finite values (2 NaN, 0 Inf) in rows 5, 17; expected finite labels
"""


def test_the_exception_of_the_last_traceback_with_all_its_lines():
    assert error_lines(CHAINED) == CHAINED.splitlines()[-3:]


def test_a_log_without_a_traceback_gives_its_last_lines():
    text = "\n".join(f"epoch {i}" for i in range(30)) + "\nKilled\n"
    assert error_lines(text) == text.splitlines()[-TAIL:]


def test_the_report_names_each_failed_job_its_log_and_its_error(tmp_path):
    (tmp_path / "v.log").write_text(CHAINED)
    (tmp_path / "empty.log").write_text("")
    job = SimpleNamespace(rule=SimpleNamespace(name="validate_split"), log=[str(tmp_path / "v.log")])
    group = SimpleNamespace(jobs=[job, SimpleNamespace(rule=SimpleNamespace(name="fig1"),
                                                       log=[str(tmp_path / "empty.log")])])
    workflow = SimpleNamespace(scheduler=SimpleNamespace(failed=[job, group]))  # a set of jobs in Snakemake
    failed = failed_jobs(workflow)
    assert failed == [("fig1", (str(tmp_path / "empty.log"),)), ("validate_split", (str(tmp_path / "v.log"),))]
    assert failure_report(failed).splitlines() == [
        "Why the jobs failed (the end of each failed job's log):",
        f"  rule fig1 ({tmp_path / 'empty.log'}):",
        "    (the log is empty or missing)",
        f"  rule validate_split ({tmp_path / 'v.log'}):",
        *(f"    {line}" for line in CHAINED.splitlines()[-3:])]
    assert failure_report([]) == "" and failed_jobs(SimpleNamespace()) == []
