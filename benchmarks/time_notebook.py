"""Execute one notebook top to bottom with its default settings; print wall seconds and peak memory.

Run as its own process (`python -m benchmarks.time_notebook NB`): the kernel is then this process's
only child, so RUSAGE_CHILDREN's max RSS is the kernel's peak memory.
"""
import json
import resource
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).parent)}})
    start = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2  # macOS reports bytes
    print(json.dumps({"wall_s": wall, "peak_mem_mib": peak_kib * scale}))


if __name__ == "__main__":
    main(sys.argv[1])
