"""Benchmarks: each workload runs on chainrule and on PyTorch in the same process; ratios are reported."""
