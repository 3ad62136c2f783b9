"""Analysis of finished runs: statistics, summary tables and plots (the only layer that imports matplotlib/seaborn)."""
