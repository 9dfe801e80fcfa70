"""prores_tools: offline tools over the files a prores run leaves behind (docs/diagnostics.md).

Reading metrics.jsonl and similarity.jsonl (`jsonl`, `run_data`), the spike score (`spike_score`), and the
report of one or more runs: figures, summary table, index.html and a TensorBoard export (`report`, run as
`prores report` or `python -m prores_tools.report`); the sweep runner over a grid of training runs and its results
and figures (`sweep`, `sweep_grid`, `sweep_runner`, `sweep_results`, `sweep_figures`; `prores sweep`).
"""
