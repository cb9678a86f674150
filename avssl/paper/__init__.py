"""The paper as data and as a report.

* :mod:`~avssl.paper.cells`: every table cell as a config override (``configs/paper/<table>/<cell>.yaml``,
  written from it) and the paper's numbers;
* :mod:`~avssl.paper.report`: ``avssl report RUNS_DIR``, our results laid out beside the paper's.

``avssl grid`` (:mod:`avssl.workflows.grid`) runs the cells.
"""
