"""Benchmarks: measured figures, each beside its reference, printed and saved as JSON."""
