"""What the benchmark suite (``benchmarks/``) and the ``benchmark`` entry point share: the grid's named shapes and
rounds (``grid``), the reader of the suite's result JSON (``result_files``), and the environment the suite runs in
as a process of its own (``suite_environment``). No Lightning, no MLflow."""
