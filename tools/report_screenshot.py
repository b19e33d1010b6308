"""Render a Snakemake HTML report in headless Chromium: a PNG screenshot, or the DOM after its scripts ran.

    python tools/report_screenshot.py results/report.html docs/images/report.png
    python tools/report_screenshot.py results/report.html --dom rendered.html
    python tools/report_screenshot.py results/report.html table3.png --open results/tables/table3_main.csv

The report is a single page whose React app draws everything from embedded JSON, so reading the
HTML file says little about what a reader sees; a browser does. Chromium is found on PATH
(`chromium`, `chromium-browser`, `google-chrome`; Debian: `apt-get install chromium`) or given with
--chromium. It runs without network, sandbox or profile (a throwaway --user-data-dir), and gets a
budget of virtual time so that the app and its Vega rule graph finish drawing before the capture.
--open shows a result's panel (its caption, as after a click on it in the menu) instead of the
opening page. --colors quantizes the screenshot to a palette (a report page is mostly flat colour,
so 256 colours keep it sharp at a fraction of the size).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# No network, no background services, no first-run dialogs: the capture depends only on the file.
QUIET_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium executable: `explicit` if given, else the first of BROWSERS on PATH."""
    for name in ([explicit] if explicit else BROWSERS):
        path = shutil.which(name)
        if path:
            return path
    wanted = explicit or " / ".join(BROWSERS)
    raise FileNotFoundError(f"no Chromium found ({wanted} not on PATH); install it (Debian: apt-get install chromium) "
                            "or pass --chromium PATH")


def chromium_command(browser: str, report: Path, profile: Path, *, action: list[str],
                     size: tuple[int, int], budget_ms: int) -> list[str]:
    """The command line: `action` is --screenshot=PNG or --dump-dom."""
    width, height = size
    return [browser, *QUIET_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
            f"--virtual-time-budget={budget_ms}", *action, report.resolve().as_uri()]


def run_chromium(report: Path, action: list[str], *, browser: str, size: tuple[int, int], budget_ms: int,
                 timeout: float, open_result: str | None = None) -> str:
    """Run Chromium on the report with a throwaway profile; its stdout (the DOM for --dump-dom)."""
    if not report.is_file():
        raise FileNotFoundError(f"report {report} does not exist")
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as tmp:
        page = report if open_result is None else with_result_opened(report, open_result, Path(tmp) / report.name)
        profile = Path(tmp) / "profile"
        cmd = chromium_command(browser, page, profile, action=action, size=size, budget_ms=budget_ms)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{browser} exited with {r.returncode} on {report}:\n{r.stderr[-3000:]}")
    return r.stdout


def with_result_opened(report: Path, result: str, copy: Path) -> Path:
    """A copy of the report that opens `result`'s panel once the app has drawn (the report's own call)."""
    html = report.read_text(encoding="utf-8")
    if json.dumps(result) + ": {" not in html:
        raise ValueError(f"{result} is not a result of {report} (give its path as under results/, e.g. "
                         "results/tables/table3_main.csv)")
    # React draws the app after the page's scripts ran (createRoot renders asynchronously): call once it is up
    call = f"app.showResultInfo({json.dumps(result)})"
    script = f"<script>window.addEventListener('load', () => setTimeout(() => {call}, 500));</script>\n"
    head, body_end, tail = html.rpartition("</body>")  # the last one: the page's scripts contain the string too
    copy.write_text(head + script + body_end + tail if body_end else html + script, encoding="utf-8")
    return copy


def screenshot(report: Path, png: Path, *, browser: str, size: tuple[int, int] = (1280, 1600),
               budget_ms: int = 10000, colors: int = 0, open_result: str | None = None, timeout: float = 120) -> Path:
    """Save a PNG of the report's first screen of `size` pixels (the panel of `open_result` open, if
    given); quantized to `colors` if > 0."""
    png.parent.mkdir(parents=True, exist_ok=True)
    out = png.resolve()
    out.unlink(missing_ok=True)  # so that a stale file cannot pass for a new capture
    run_chromium(report, [f"--screenshot={out}"], browser=browser, size=size, budget_ms=budget_ms, timeout=timeout,
                 open_result=open_result)
    if not out.is_file():
        raise RuntimeError(f"{browser} wrote no screenshot to {out}")
    if colors:
        from PIL import Image

        with Image.open(out) as image:
            small = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
        small.save(out, optimize=True)
    return png


def rendered_dom(report: Path, *, browser: str, size: tuple[int, int] = (1280, 1600), budget_ms: int = 10000,
                 timeout: float = 120) -> str:
    """The report's DOM after its scripts ran (what the reader's browser shows, as HTML)."""
    return run_chromium(report, ["--dump-dom"], browser=browser, size=size, budget_ms=budget_ms, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path, help="the report HTML file (snakemake --report REPORT.html)")
    p.add_argument("png", type=Path, nargs="?", help="where to save the screenshot")
    p.add_argument("--dom", type=Path, help="also write the rendered DOM (HTML) here")
    p.add_argument("--size", default="1280x1600", help="window size WIDTHxHEIGHT in pixels (default 1280x1600)")
    p.add_argument("--open", dest="open_result", metavar="RESULT",
                   help="show this result's panel, e.g. results/tables/table3_main.csv (default: the opening page)")
    p.add_argument("--colors", type=int, default=0, help="quantize the PNG to this many colours (0: keep)")
    p.add_argument("--budget-ms", type=int, default=10000, help="virtual time the page gets to draw (ms)")
    p.add_argument("--chromium", help="the browser executable (default: chromium etc. on PATH)")
    args = p.parse_args(argv)
    if args.png is None and args.dom is None:
        p.error("give a PNG path, --dom, or both")
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 1280x1600")
    try:
        browser = find_chromium(args.chromium)
        if args.png is not None:
            screenshot(args.report, args.png, browser=browser, size=(width, height), budget_ms=args.budget_ms,
                       colors=args.colors, open_result=args.open_result)
            print(f"{args.png}: {args.png.stat().st_size / 1024:.0f} KB")
        if args.dom is not None:
            args.dom.write_text(rendered_dom(args.report, browser=browser, size=(width, height),
                                             budget_ms=args.budget_ms))
            print(f"{args.dom}: rendered DOM")
    except (FileNotFoundError, ValueError, RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"report_screenshot: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
