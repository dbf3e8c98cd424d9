"""General tools for what a run leaves behind, for every experiment: curves and mean ± std from
metrics.json, Markdown tables, figure panels, TensorBoard event files, verdicts and the shared
report sections. Nothing here knows an experiment."""
