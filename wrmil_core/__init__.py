"""wrmil core: plain-Python maths and I/O (never imports Dagster)."""
