"""Why jobs failed, on the terminal where Snakemake runs: the Snakefile's ``onerror`` handler prints,
when the workflow stops, the error at the end of each failed job's log.

Snakemake's own report of a failed job names the job's log but not the reason, and for a rule
without a ``message:`` it prints ``message: None`` (its formatter tests the log record's text but
prints the rule's message); ``--show-failed-logs`` prints whole logs, long for a training run. The
scripts send everything, tracebacks included, to their log (``specvit.runtime.io.log_to``), so the
reason is the log's end: the exception of the last Python traceback (the lines after its frames),
else the log's last lines. It works for every executor (the logs are files), with or without a
profile.
"""
from __future__ import annotations

from pathlib import Path

TAIL = 8          # lines of a log without a traceback
MAX_LINES = 20    # lines of one exception (a message may list several problems)


def error_lines(text: str, tail: int = TAIL) -> list[str]:
    """The error at the end of a job's log: the exception of its last traceback, else its last lines."""
    lines = text.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if starts:
        after = lines[starts[-1] + 1:]
        first = next((i for i, line in enumerate(after) if line and not line[0].isspace()), None)
        if first is not None:
            return after[first:first + MAX_LINES]
    return lines[-tail:]


def failed_jobs(workflow) -> list[tuple[str, list[str]]]:
    """(rule, log files) of every job that failed in this Snakemake run (its scheduler's record; a
    failed group job stands for all its jobs)."""
    jobs = []
    for job in getattr(getattr(workflow, "scheduler", None), "failed", ()) or ():
        jobs.extend(getattr(job, "jobs", None) or [job])
    return sorted({(job.rule.name, tuple(str(f) for f in job.log)) for job in jobs})


def failure_report(failed) -> str:
    """The text for the terminal: each failed job's rule, log and error. ``failed``: (rule, log files)."""
    if not failed:
        return ""
    out = ["Why the jobs failed (the end of each failed job's log):"]
    for rule, logs in failed:
        if not logs:
            out.append(f"  rule {rule}: it has no log")
        for log in logs:
            path = Path(log)
            text = path.read_text(errors="replace") if path.is_file() else ""
            lines = error_lines(text) if text.strip() else ["(the log is empty or missing)"]
            out.append(f"  rule {rule} ({log}):")
            out.extend(f"    {line}" for line in lines)
    return "\n".join(out)
