"""wrmil Dagster layer."""
