"""A first start's slow guesses (pandas, numpy) are imported only if the project's own sources import them."""

import itertools

from unstuck.warm import seeds


def tree(root, files: dict) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_names_imported_by_the_projects_sources_are_found(tmp_path):
    tree(tmp_path, {
        "main.py": "from fastapi import FastAPI\nimport pandas as pd\n",
        "reports/charts.py": "def plot():\n    from numpy.random import default_rng  # in a function\n",
    })
    assert seeds.imported_by_sources(tmp_path, {"pandas", "numpy"}) == {"pandas", "numpy"}


def test_what_the_sources_do_not_import_is_left_out(tmp_path):
    tree(tmp_path, {
        "main.py": "import pandasql\nimport numpy_financial\n# import pandas\nx = 'import numpy'\n",
        ".venv/lib/site.py": "import pandas\n",  # not the project's own: hidden, dependencies, caches
        "venv/lib/x.py": "import pandas\n",
        "node_modules/x.py": "import numpy\n",
        "build/gen.py": "import numpy\n",  # ignored by UNSTUCK_IGNORE below
        "notes.txt": "import pandas\n",
    })
    assert seeds.imported_by_sources(tmp_path, {"pandas", "numpy"}, ignore=("build",)) == set()


def test_a_tree_too_large_to_read_in_time_counts_as_using_them_all(tmp_path):
    tree(tmp_path, {f"pkg/m{i}.py": "x = 1\n" for i in range(5)})
    ticks = itertools.count(0.0, 0.1)
    assert seeds.imported_by_sources(tmp_path, {"pandas", "numpy"}, budget_s=0.25,
                                     clock=lambda: next(ticks)) == {"pandas", "numpy"}
