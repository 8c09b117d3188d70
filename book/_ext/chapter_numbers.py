"""Number equations, theorems, exercises and figures per chapter: "(7.8)", "Theorem 4.2", "Exercise B.3".

Sphinx numbers these through `env.toc_fignumbers` (equations too, with `math_numfig: true`). Without a
numbered toctree its counters run across the whole book, so "(8)" on chapter 7 could be anyone's. After
Sphinx has assigned its numbers, this rewrites them as (chapter, k), counting per chapter over the
chapter page and then its notebooks. The chapter comes from the file name: `book/07_ddpm`,
`notebooks/07_ddpm` -> 7; `book/B_probability_toolbox` -> B. Pages outside the chapters (preface,
notation, results) count on their own, without a prefix.
"""
import re
from collections import defaultdict

CHAPTER = re.compile(r"^(?:book|notebooks)/(?:0*(\d+)[a-z]?|([A-Z]))_")


def chapter_of(docname: str) -> str | None:
    """'book/07_ddpm' -> '7', 'notebooks/02b_coupling_flows' -> '2', 'book/B_x' -> 'B', else None."""
    match = CHAPTER.match(docname)
    return None if match is None else (match.group(1) or match.group(2))


def _renumber(app, env):
    groups = defaultdict(list)  # chapter (or the page itself) -> its docnames, chapter page first
    for docname in sorted(env.toc_fignumbers):
        groups[chapter_of(docname) or docname].append(docname)
    for prefix, docnames in groups.items():
        counters = defaultdict(int)
        for docname in sorted(docnames, key=lambda d: (not d.startswith("book/"), d)):
            for figtype, numbers in env.toc_fignumbers[docname].items():
                for node_id in sorted(numbers, key=numbers.get):  # Sphinx's numbers follow the page order
                    counters[figtype] += 1
                    k = counters[figtype]
                    numbers[node_id] = (prefix, k) if chapter_of(docname) else (k,)
    return []


def setup(app):
    app.connect("env-get-updated", _renumber, priority=900)  # after Sphinx's own TocTreeCollector (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
