"""The Hydra application: one job cross-validates one (data, method, model) cell.

alchemy data=synthetic-dns method=alchemy4 model=rf      # one cell -> results.json
alchemy -m experiment=paper_table                        # 7 methods x 3 models
alchemy-report multirun/paper_table                      # the slides' table and plots

:mod:`.job` builds a cell from its config and writes its results; :mod:`.cli` holds the
console scripts. Configs live in the top-level ``configs/`` folder, packaged as
``alchemy_torch.configs``.
"""

from alchemy_torch.app.job import CellFailed, run_cell

__all__ = ["CellFailed", "run_cell"]
