"""Prometheus metrics summed over every worker, served at `metrics_path` (docs/metrics.md).

`boot` prepares the multiprocess directory in the arbiter; `tally` counts in a worker,
`worker_metrics` writes the counts to its files and answers scrapes, `endpoint` routes the
scrapes, and `directory` folds the files of workers that ended. Only `boot`, `tally` and
`endpoint` are imported without the `prometheus` extra installed.
"""
