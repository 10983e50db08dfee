"""``minmaxlab verify`` (run the studies, print the claims table, write a report) and
``minmaxlab paper`` (rebuild every figure and table from saved results, never simulating)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from minmaxlab.config import writable_folder
from minmaxlab.errors import ConfigError, did_you_mean
from minmaxlab.meta import provenance
from minmaxlab.shipped import study_files
from minmaxlab.workers import check_jobs

# claims checked by several studies, each study about one method: what they have in common
CLAIM_TITLES = {"C10": "the methods after DPOSG remove what C4, C6 and C9 measure: gradient "
                       "tracking, variance reduction, accelerated and compressed gossip"}
CLAIM_ORDER = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10", "C11", "C12",
               "wallclock", "GAN", "C13"]


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    ax = abs(x)
    if ax != 0 and (ax < 1e-3 or ax >= 1e4):
        return f"{x:.2e}"
    return f"{x:.3g}"


def claim_verdict(counts) -> str:
    """A claim's verdict from its checks' verdicts: any fail fails it; reported rows decide
    nothing; a claim with only not-applicable rows is not applicable."""
    if counts.get("fail", 0):
        return "fail"
    if counts.get("inconclusive", 0):
        return "inconclusive"
    if counts.get("pass", 0):
        return "pass"
    return "not applicable" if counts.get("not applicable", 0) else "reported"


def _order(claim):
    return (CLAIM_ORDER.index(claim) if claim in CLAIM_ORDER else 99, claim)


def summarize(verdict_rows: pd.DataFrame, titles: dict) -> pd.DataFrame:
    """One row per claim: its checks, how many passed, the range of measured values, the
    controls run against it and their verdict (they must fail)."""
    from minmaxlab.claims import worst_control_verdict

    rows = []
    for claim in sorted(verdict_rows["claim"].unique(), key=_order):
        g = verdict_rows[verdict_rows["claim"] == claim]
        counts = g["verdict"].value_counts()
        if set(counts.index) == {"reported"}:  # a comparison: its numbers are in claims.csv
            continue
        deciding = g[g["verdict"].isin(["pass", "fail", "inconclusive"])]
        m = pd.to_numeric(deciding["measured"], errors="coerce")
        measured = "-" if not len(m) else (_fmt(m.iloc[0]) if len(m) == 1 else
                                           f"{_fmt(m.min())} .. {_fmt(m.max())}")
        ctrl = g[g["control"].fillna("") != ""] if "control" in g else g.iloc[:0]
        controls = ", ".join(sorted(set(", ".join(ctrl["control"]).split(", ")))) if len(ctrl) else ""
        cverdict = worst_control_verdict(ctrl["control_verdict"]) if len(ctrl) else "-"
        why = ""
        if counts.get("not applicable", 0) and not len(deciding):
            why = str(g["reason"].iloc[0])
        rows.append({"claim": claim, "what": titles.get(claim, ""), "checks": len(deciding),
                     "pass": int(counts.get("pass", 0)), "fail": int(counts.get("fail", 0)),
                     "inconclusive": int(counts.get("inconclusive", 0)),
                     "reported": int(counts.get("reported", 0)), "measured": measured,
                     "verdict": claim_verdict(counts), "controls": controls,
                     "control_verdict": cverdict, "why": why})
    return pd.DataFrame(rows)


def format_summary(summary: pd.DataFrame) -> str:
    cols = ["claim", "verdict", "checks", "measured", "control verdict", "what"]
    body = []
    for _, r in summary.iterrows():
        v = r["verdict"] if r["verdict"] in ("pass", "not applicable") else r["verdict"].upper()
        cv = r["control_verdict"] if r["control_verdict"] in ("fail", "-") else \
            r["control_verdict"].upper()
        body.append([r["claim"], v, f"{r['pass']}/{r['checks']} pass", r["measured"],
                     f"{cv} (must fail)" if r["control_verdict"] != "-" else "-",
                     r["why"] or r["what"]])
    return _text_table(cols, body)


def _text_table(cols, body) -> str:
    widths = [max(len(c), *(len(str(row[j])) for row in body)) if body else len(c)
              for j, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in body]
    return "\n".join(lines)


def _short(text: str, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 3] + "..."


def format_checks(rows: pd.DataFrame) -> str:
    """Every check, compactly: claim, setting, predicted, measured [CI], verdict, control."""
    body = []
    for _, r in rows.iterrows():
        m = _fmt(r["measured"])
        if np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"]) and r["ci_low"] != r["ci_high"]:
            m += f" [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        setting = str(r["setting"]).split(": ", 1)[-1]
        if r["claim"] == "GAN":  # the reason reads like "GAN 8gaussians dpoadam ring: modes 8/8, ..."
            setting = str(r["reason"])
        if r["verdict"] == "not applicable":
            setting = str(r["reason"])
        v = r["verdict"] if r["verdict"] in ("pass", "reported", "not applicable") else \
            str(r["verdict"]).upper()
        ctrl = "-"
        if isinstance(r.get("control"), str) and r["control"]:
            cv = r["control_verdict"]
            ctrl = f"{cv if cv == 'fail' else cv.upper()}: {r['control']}"
        width = 90 if r["claim"] == "GAN" else 58
        body.append([r["claim"], _short(setting, width), _short(r["predicted"], 48), m, v,
                     _short(ctrl, 40)])
    return _text_table(["claim", "setting", "predicted", "measured", "verdict", "control"], body)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        out.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(out)


def verify(quick: bool = True, out: str | Path = "report", jobs: int | None = None,
           progress: bool = True, only: list[str] | None = None, echo=print,
           problem: str | None = None) -> dict:
    """Run the (quick) studies, print the claims table, write the report folder. ``problem``
    (``FILE.py:FUNCTION`` or ``pkg.mod:FUNCTION``) runs every applicable claim on a user's game.
    The result's ``failed`` is True when a check failed (the exit code 1 of the CLI)."""
    from minmaxlab.rates import verdict_table
    from minmaxlab.study import load_study, run_studies

    start = time.perf_counter()
    files = study_files()
    if only is not None:
        names = [f.stem for f in files]
        unknown = sorted(set(only) - set(names))
        if unknown or not only:
            raise ConfigError(f"--only: no study named {unknown or only}"
                              f"{did_you_mean(unknown[0], names) if unknown else ''}"
                              f"; studies: {', '.join(names)}")
        files = [f for f in files if f.stem in only]
    check_jobs(jobs)  # before any work (run_study checks it too, but only once it is reached)
    out = writable_folder(out, "report folder")
    if problem is not None:
        from minmaxlab.problems import is_user_problem, user_problem

        if not is_user_problem(problem):
            raise ConfigError(f"--problem: expected FILE.py:FUNCTION or pkg.module:FUNCTION, "
                              f"got {problem!r}")
        user_problem(problem, 2)  # fail early, with the factory's own message
    studies = [load_study(f, quick=quick, problem=problem) for f in files]
    studies = [s for s in studies if s.raw.get("verify", True) is not False or only]
    drawn = {}

    def take(res):  # each study as its last run finishes, while the others go on
        failed = f", {len(res.failed_runs)} FAILED" if res.failed_runs else ""
        echo(f"  {res.study.name:<34} {res.computed:>4} runs ({res.skipped} reused{failed}) "
             f"{res.elapsed:6.1f} s")
        if len(res.table):
            drawn[res.study.name] = draw_study_figures(res.folder, out / "figures")

    # one pool for all studies: the GAN's long run overlaps the short runs of the others
    results = run_studies(studies, out=out / "results", jobs=jobs, progress=progress,
                          on_result=take)
    all_rows, control_rows, titles, figures = [], [], {}, []
    for res in results:  # the files' order, whatever the order they finished in
        study = res.study
        vt = verdict_table(res.verdicts)
        vt.insert(0, "study", study.name)
        all_rows.append(vt)
        ct = verdict_table(res.control_verdicts)
        ct.insert(0, "study", study.name)
        control_rows.append(ct)
        for c in study.claims:
            head, _, rest = study.title.partition(": ")
            if c["claim"] in CLAIM_TITLES:
                titles[c["claim"]] = CLAIM_TITLES[c["claim"]]
            elif head == c["claim"]:  # the claim's own study ("C6: ...") names it
                titles[c["claim"]] = rest
            else:
                titles.setdefault(c["claim"], rest or head)
        figures += drawn.get(study.name, [])
    if not all_rows:
        raise ConfigError("verify: no study to run (every selected study has verify = false)")
    rows = pd.concat(all_rows, ignore_index=True)
    rows = rows.sort_values("claim", key=lambda c: c.map(lambda x: _order(x)[0]), kind="stable")
    summary = summarize(rows, titles)
    elapsed = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / "claims.csv", index=False)
    pd.concat(control_rows, ignore_index=True).to_csv(out / "controls.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    write_markdown(out / "claims.md", summary, rows, figures, quick, elapsed, problem)
    write_html(out / "index.html", summary, rows, figures, quick, elapsed, problem)
    echo("")
    echo(format_checks(rows))
    echo("")
    echo(format_summary(summary))
    failed = bool((rows["verdict"] == "fail").any()) if len(rows) else False
    echo(f"\n{len(rows)} rows in {elapsed:.0f} s; "
         f"{'a check FAILED' if failed else 'no check failed'}; report: {out / 'index.html'} "
         f"(tables: {out / 'claims.csv'}, {out / 'controls.csv'}; figures: {out / 'figures'})")
    return {"summary": summary, "rows": rows, "elapsed": elapsed, "figures": figures,
            "failed": failed}


def write_markdown(path, summary, rows, figures, quick, elapsed, problem=None):
    prov = provenance()
    on = f" on the user's game `{problem}`" if problem else ""
    lines = [
        "# minmaxlab: claims of the DPOSG theory, measured",
        "",
        "Each claim's negative control (a setting in which it is false) must FAIL; a control that "
        "passes makes the claim's checks fail.",
        "",
        f"{'Quick' if quick else 'Full'} versions of the studies{on}, {elapsed:.0f} s; "
        f"git revision {prov['git_revision']}; "
        + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()) + ".",
        "",
        "## Summary",
        "",
        _md_table(summary),
        "",
        "## Every check",
        "",
        _md_table(rows.assign(measured=rows["measured"].map(_fmt), ci_low=rows["ci_low"].map(_fmt),
                              ci_high=rows["ci_high"].map(_fmt))),
        "",
        "## Figures",
        "",
    ]
    for f in figures:
        rel = os.path.relpath(f["png"], Path(path).parent)
        lines += [f"### {f['title']}", "", f"![{f['title']}]({rel})", "", f["caption"], ""]
    Path(path).write_text("\n".join(lines))


_VERDICT_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "inconclusive": "#9a6700",
                    "reported": "#57606a", "not applicable": "#57606a", "not run": "#57606a"}


def _html_table(df: pd.DataFrame, verdict_cols=("verdict", "control_verdict")) -> str:
    import html

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, r in df.iterrows():
        cells = []
        for c in df.columns:
            v = r[c]
            text = _fmt(v) if isinstance(v, float) else str(v)
            style = ""
            if c in verdict_cols and str(v) in _VERDICT_COLOURS:
                style = f' style="color:{_VERDICT_COLOURS[str(v)]};font-weight:600"'
            cells.append(f"<td{style}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_html(path, summary, rows, figures, quick, elapsed, problem=None):
    """One self-contained page (figures inline): the claims with their verdicts and controls,
    every check, every figure with its caption, and the provenance."""
    import base64
    import html

    prov = provenance()
    on = f" on the user's game <code>{html.escape(problem)}</code>" if problem else ""
    cols = ["claim", "verdict", "checks", "pass", "fail", "inconclusive", "measured", "controls",
            "control_verdict", "what"]
    checks = rows[["claim", "setting", "predicted", "measured", "ci_low", "ci_high", "verdict",
                   "control", "control_verdict", "reason"]]
    figs = []
    for f in figures:
        data = base64.b64encode(Path(f["png"]).read_bytes()).decode()
        figs.append(f"<figure><img alt=\"{html.escape(f['title'])}\" "
                    f"src=\"data:image/png;base64,{data}\"><figcaption>{html.escape(f['caption'])}"
                    f"</figcaption></figure>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>minmaxlab: claims measured</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1f2328}}
table{{border-collapse:collapse;font-size:.85em;margin:1em 0}}
th,td{{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}}
th{{background:#f6f8fa}} figure{{margin:2em 0}} img{{max-width:100%}}
figcaption{{font-size:.85em;color:#57606a}}
</style></head><body>
<h1>minmaxlab: claims of the DPOSG theory, measured</h1>
<p>{'Quick' if quick else 'Full'} versions of the studies{on}, {elapsed:.0f} s. Each claim's
negative control (a setting in which it is false) must FAIL; a control that passes makes the
claim's checks fail.</p>
<h2>Claims</h2>
{_html_table(summary[cols])}
<h2>Figures</h2>
{''.join(figs) or '<p>No figures.</p>'}
<h2>Every check</h2>
{_html_table(checks)}
<h2>Provenance</h2>
<p>git revision <code>{html.escape(str(prov['git_revision']))}</code>; {html.escape(
        ', '.join(f'{k} {v}' for k, v in prov['versions'].items()))}.</p>
</body></html>
"""
    Path(path).write_text(page)


def draw_study_figures(folder: Path, fig_dir: Path) -> list[dict]:
    """Draw the figure of every claim of a finished study folder from its saved files only."""
    from minmaxlab.claims import CLAIMS
    from minmaxlab.plotting import save

    folder = Path(folder)
    spec = json.loads((folder / "study.json").read_text())
    study = spec["study"]
    table_path = folder / "table.csv"
    table = pd.read_csv(table_path, low_memory=False) if table_path.exists() else None
    claims = study.get("claims", [])
    made = []
    for c in claims:
        key = f"{c['claim']}_{c['analysis']}" if len(claims) > 1 else c["claim"]
        pts_path = folder / f"points_{key}.csv"
        pts = pd.read_csv(pts_path, low_memory=False) if pts_path.exists() else None
        draw = CLAIMS[c["analysis"]].figure if c["analysis"] in CLAIMS else None
        if pts is None or table is None or draw is None:
            continue
        fig = draw(pts, table[table["role"] == "claim"] if "role" in table else table, folder)
        if fig is None:
            continue
        stem = fig_dir / f"{c['claim']}_{folder.name.replace('_quick', '', 1)}"
        paths = save(fig, stem)
        caption = (f"{study.get('title', study['name'])}. Study `{study['name']}`"
                   f"{' (quick version)' if spec.get('quick') else ''}, claim {c['claim']} "
                   f"(analysis `{c['analysis']}`). {' '.join(study.get('description', '').split())}")
        Path(stem.with_suffix(".txt")).write_text(caption + "\n")
        made.append({"claim": c["claim"], "study": study["name"], "title": study.get("title", ""),
                     "pdf": paths[0], "png": paths[1], "caption": caption})
    return made


def paper(results: str | Path | None = None, out: str | Path | None = None, echo=print) -> list[dict]:
    """Rebuild every figure and the claims table from saved study results (no simulation)."""
    if results is None:
        results = next((p for p in (Path("results"), Path("report") / "results") if p.is_dir()),
                       Path("results"))
    results = Path(results)
    if not results.is_dir():
        raise ConfigError(f"no results folder {results}: run `minmaxlab verify` or "
                          "`minmaxlab study ...` first, or pass --results DIR")
    # beside the results, never in the package; made even when no study has a figure to draw
    out = writable_folder(Path(out) if out else Path("paper") / "figures", "figures folder")
    folders = sorted(p for p in results.iterdir() if (p / "study.json").exists())
    if not folders:
        raise ConfigError(f"{results} holds no study results (folders with study.json)")
    chosen = {}
    for p in folders:  # prefer a full study over its quick version
        name = p.name[:-6] if p.name.endswith("_quick") else p.name
        if name not in chosen or not p.name.endswith("_quick"):
            chosen[name] = p
    made, claim_rows = [], []
    for _name, p in sorted(chosen.items()):
        made += draw_study_figures(p, out)
        if (p / "claims.csv").exists():
            cr = pd.read_csv(p / "claims.csv")
            cr.insert(0, "study", p.name)
            claim_rows.append(cr)
    if claim_rows:
        rows = pd.concat(claim_rows, ignore_index=True)
        rows.to_csv(out / "claims_table.csv", index=False)
        (out / "claims_table.md").write_text(_md_table(rows.assign(measured=rows["measured"].map(_fmt)))
                                             + "\n")
    for f in made:
        echo(f"  {Path(f['pdf']).name:<48} <- study {f['study']}, claim {f['claim']}")
    echo(f"{len(made)} figures (PDF + PNG + caption) and the claims table in {out}")
    return made
