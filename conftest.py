"""pytest reads command-line options only from plugins and the root conftest, so the benchmark suite's options
(--lstm-impls, --lstm-shapes, --lstm-devices, --lstm-threads, --lstm-scaling) are loaded from here."""

pytest_plugins = ("benchmarks.plugin",)
