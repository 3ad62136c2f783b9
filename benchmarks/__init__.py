"""Benchmarks of mjreinforce: scripts that measure and write a Markdown report; they never assert.

Run them from the repository root as modules, e.g. ``python -m benchmarks.run`` (see README.md here).
Importing this package imports nothing else, so :mod:`benchmarks.run` can pin the process to one core
before numpy, torch or envpool are loaded.
"""
