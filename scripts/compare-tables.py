"""Compare every episodes.csv/evals.csv under A with the same file under B, the wall_seconds column aside.

Usage: python scripts/compare-tables.py A B   (exit 1 when any table differs or is missing)
"""

import csv
import sys
from pathlib import Path


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    keep = [i for i, column in enumerate(table[0]) if column != "wall_seconds"]
    return [[row[i] for i in keep] for row in table]


def main(a: Path, b: Path) -> int:
    same = True
    for file in sorted(a.rglob("*.csv")):
        other = b / file.relative_to(a)
        equal = other.exists() and rows(file) == rows(other)
        same &= equal
        print("same" if equal else "DIFFERENT", file.relative_to(a))
    print("all tables equal" if same else "differences")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
