"""Benchmark evaluation: metrics, sequence selection, the tracking runner, reports and plots."""
