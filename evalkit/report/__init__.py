"""Summaries, comparisons, Pareto frontiers and charts."""
