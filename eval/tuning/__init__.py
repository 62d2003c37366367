"""`python -m eval.tune`'s parts: the study (`study.py`: the tuning folder, its definition, Optuna's study and
the locks that let several processes share it), the trial runner (`trial.py`: one trial as an `eval.run`
child process that dies with its parent, and its score) and the report (`report.py`: settings.json, trials.csv,
report.md, objective.svg)."""
