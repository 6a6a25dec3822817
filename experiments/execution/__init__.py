"""The execution runtime: attempts (the only writer of ``Attempt.state``), dispatch, supervisor, reconciler,
launcher and backends (local GPU slots, Slurm via submitit). Imports nothing at package level, so the Slurm
job function (``jobprocess``) unpickles without Django."""
