"""`make bench`: every chapter's benchmark and every notebook's run time -> results.json, results.md.

A benchmark is a module with `run(device) -> list[Row]` (`benchmarks.common.Row`: one model on one
data set, a metric with its standard error next to its limit or floor). Each trains its models by
calling the chapter's recipe in `dgm`, the same function its notebook calls, sometimes with a larger
budget that the module's docstring states.

The two passes measure different things: the model rows measure what the recipes reach (metrics,
and the wall time of each model), the notebook pass measures what a reader waits for (each notebook
top to bottom in a fresh kernel, with its peak memory). The notebooks train their models again:
that is the point of timing them.

    python -m benchmarks.run                     # everything (make bench)
    python -m benchmarks.run ch07_ddpm ch08_vdm  # some chapters' rows only; results files untouched
    python -m benchmarks.run notebooks           # only the notebook pass: re-times the notebooks and
                                                 # rewrites their rows, keeping the last model rows
"""
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

import dgm
from benchmarks.common import Row

# every chapter's benchmark module, in the book's order
BENCHMARKS = ["ch01_mixture_mle", "ch02_flows", "ch02_cnf", "ch03_autoregressive", "ch04_vae", "ch05_ebm",
              "ch06_score", "ch07_ddpm", "ch08_vdm"]
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def model_rows(names: list[str], device: torch.device) -> list[dict]:
    rows = []
    for name in names:
        print(f"running {name} on {device} ...", flush=True)
        for row in importlib.import_module(f"benchmarks.{name}").run(device):
            if not isinstance(row, Row):
                raise TypeError(f"benchmarks.{name}.run must return Row objects, got {type(row).__name__}")
            rows.append(row.as_dict())
    return rows


def time_notebooks() -> list[dict]:
    rows = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        print(f"timing {nb.name} ...", flush=True)
        out = subprocess.run([sys.executable, "-m", "benchmarks.time_notebook", str(nb)], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        rows.append({"notebook": nb.stem, **json.loads(out.stdout.strip().splitlines()[-1])})
    return rows


def model_table(rows: list[dict]) -> list[str]:
    lines = ["| chapter | model | data | metric | value | limit | unit | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        value = f"{r['value']:.4f} ± {r['se']:.4f}"
        if r.get("bits_per_dim") is not None:
            value += f" ({r['bits_per_dim']:.3f} bits/dim)"
        limit = "—" if r["limit"] is None else f"{r['limit']:.4g}"  # None: no known limit (real data)
        lines.append(f"| {r['chapter']} | {r['model']} | `{r['dataset']}` | {r['metric']} | "
                     f"{value} | {limit} | {r['unit']} | {r['wall_s']:.1f} |")
    return lines


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = [f"Measured on {env['date']} by `make bench`: {env['machine']}, {env['cpu_count']} CPU cores, "
             f"device `{env['device']}`, torch {env['torch']}.", ""]
    # In the PDF an 8-column table would run off the page: fixed column widths (fractions of the line)
    # let LaTeX wrap the cells; the HTML book ignores the directive.
    lines += ["```{tabularcolumns} \\Y{0.08}\\Y{0.19}\\Y{0.20}\\Y{0.12}\\Y{0.14}\\Y{0.07}\\Y{0.10}\\Y{0.07}", "```", ""]
    lines += model_table(results["models"])
    when = f", measured on {env['notebooks_date']}" if env.get("notebooks_date") else ""
    lines += ["", "Notebooks, executed top to bottom with their default settings "
              f"(budget: 60 s on a 2-core CPU, 120 s at most; under 2 GiB{when}):", "",
              "| notebook | wall s | peak memory MiB |", "|---|---|---|"]
    for r in results["notebooks"]:
        lines.append(f"| `{r['notebook']}` | {r['wall_s']:.1f} | {r['peak_mem_mib']:.0f} |")
    return "\n".join(lines) + "\n"


def main(args: list[str]) -> None:
    device = dgm.get_device()
    if args == ["notebooks"]:  # only the notebook pass: re-time the notebooks, keep the model rows
        results = json.loads((HERE / "results.json").read_text())
        results["notebooks"] = time_notebooks()
        results["environment"]["notebooks_date"] = datetime.date.today().isoformat()
        (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (HERE / "results.md").write_text(markdown(results))
        print(markdown(results))
        return
    names = args or BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmarks {unknown}; choose from {BENCHMARKS}")
    rows = model_rows(names, device)
    if args:  # a partial run: print the rows, keep the results files of the last full run
        print("\n".join(model_table(rows)))
        return
    results = {
        "environment": {"date": datetime.date.today().isoformat(), "machine": platform.platform(),
                        "cpu_count": os.cpu_count(), "device": str(device),
                        "torch": torch.__version__, "python": platform.python_version()},
        "models": rows,
        "notebooks": time_notebooks(),
    }
    results["environment"]["notebooks_date"] = results["environment"]["date"]
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "results.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main(sys.argv[1:])
