"""Evaluation workflows that drive Lightning or child ``avssl`` processes: the linear evaluation
(``avssl test``'s fit / test loops), transfer over official splits, and the paper's grid.

The LightningModules they drive live in :mod:`avssl.evaluation`; child processes start through
one runner (:mod:`avssl.workflows.runner`)."""
