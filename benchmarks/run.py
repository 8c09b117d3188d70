"""`make bench`: every registered benchmark and every notebook's run time -> results.json, results.md.

A benchmark is a module with `run(device) -> list[dict]` (one row per model and data set: metric,
value, its limit or floor, unit, wall seconds, device). Each chapter appends its module below.
"""
import datetime
import json
import platform
import subprocess
import sys
from pathlib import Path

import torch

import dgm
from benchmarks import (ch01_mixture_mle, ch02_cnf, ch02_flows, ch03_autoregressive, ch04_vae, ch05_ebm, ch06_score,
                        ch07_ddpm, ch08_vdm)

# chapters register their benchmark modules here
BENCHMARKS = [ch01_mixture_mle, ch02_flows, ch02_cnf, ch03_autoregressive, ch04_vae, ch05_ebm, ch06_score, ch07_ddpm,
              ch08_vdm]
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def time_notebooks() -> list[dict]:
    rows = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        print(f"timing {nb.name} ...", flush=True)
        out = subprocess.run([sys.executable, "-m", "benchmarks.time_notebook", str(nb)], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        rows.append({"notebook": nb.stem, **json.loads(out.stdout.strip().splitlines()[-1])})
    return rows


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = [f"Measured on {env['date']} by `make bench`: {env['machine']}, {env['cpu_count']} CPU cores, "
             f"device `{env['device']}`, torch {env['torch']}.", "",
             "| chapter | model | data | metric | value | limit | unit | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results["models"]:
        value = f"{r['value']:.4f} ± {r['se']:.4f}"
        if "bits_per_dim" in r:
            value += f" ({r['bits_per_dim']:.3f} bits/dim)"
        limit = "—" if r["limit"] is None else f"{r['limit']:.4g}"  # None: no known limit (real data)
        lines.append(f"| {r['chapter']} | {r['model']} | `{r['dataset']}` | {r['metric']} | "
                     f"{value} | {limit} | {r['unit']} | {r['wall_s']:.1f} |")
    lines += ["", "Notebooks, executed top to bottom with their default settings "
              "(budget: 60 s on a 2-core CPU, 120 s at most; under 2 GiB):", "",
              "| notebook | wall s | peak memory MiB |", "|---|---|---|"]
    for r in results["notebooks"]:
        lines.append(f"| `{r['notebook']}` | {r['wall_s']:.1f} | {r['peak_mem_mib']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    torch.set_num_threads(min(torch.get_num_threads(), 2 if "--two-threads" in sys.argv else 64))
    device = dgm.get_device()
    rows = []
    for bench in BENCHMARKS:
        print(f"running {bench.__name__} on {device} ...", flush=True)
        rows += bench.run(device)
    results = {
        "environment": {"date": datetime.date.today().isoformat(), "machine": platform.platform(),
                        "cpu_count": __import__("os").cpu_count(), "device": str(device),
                        "torch": torch.__version__, "python": platform.python_version()},
        "models": rows,
        "notebooks": time_notebooks(),
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "results.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
