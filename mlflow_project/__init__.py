"""Entry points behind the MLproject: train (main), benchmark and report. Thin: parse, validate, call down, log."""
