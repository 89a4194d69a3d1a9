"""What the installed pytest plugin costs a test session that never asks for a server: the median
wall time of `pytest` on an empty test file, with the plugin and without (`-p no:mockserver`).

    python3 bench/plugin.py [--runs 7]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_seconds(arguments: list[str], directory: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments], cwd=directory,
                       check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "test_empty.py").write_text("def test_nothing():\n    pass\n")
        without = median_seconds(["-p", "no:mockserver"], directory, args.runs)
        with_plugin = median_seconds([], directory, args.runs)
    print(f"pytest on an empty test file, median of {args.runs}: {with_plugin:.2f} s with the mockserver plugin, "
          f"{without:.2f} s without: +{with_plugin - without:.2f} s (target: within 0.1 s)")


if __name__ == "__main__":
    main()
