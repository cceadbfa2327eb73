"""Benchmark: run each script's default training and report wall time and held-out figures.

Not part of the test suite (pytest does not collect it): it trains the real models on the real
data, which takes minutes. Each script runs exactly as a user would run it, with default
settings, on the CPU unless --device says otherwise, and writes its checkpoint to a temporary
folder so your own model.pt files are left alone.

    python tests/benchmark.py --data-dir ../shared/data            # all three scripts
    python tests/benchmark.py --data-dir ../shared/data --only char-rnn-classification --repeat 3
    python tests/benchmark.py --data-dir ../shared/data --keep /tmp/bench   # keep models, logs

It prints one markdown table row per script: the median wall time from start to final report
(the process's whole life, data loading and torch import included) and the `test:` line each
script prints at the end of its report (its figures on its own held-out test split).
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = ["char-rnn-classification", "char-rnn-generation", "seq2seq-translation"]


def run_once(folder, data_dir, device, workdir):
    cmd = [sys.executable, str(REPO / folder / "train.py"), "--data-dir", str(data_dir),
           "--checkpoint", str(Path(workdir) / f"{folder}.pt"), "--device", device]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (Path(workdir) / f"{folder}.log").write_text(result.stderr)  # the whole report, for reading
    if result.returncode != 0:
        sys.exit(f"error: {folder} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    figures = [line for line in result.stderr.splitlines() if line.startswith("test:")]
    figures = figures[-1][len("test:"):].strip().replace(" | ", "; ") if figures else "(none)"
    return wall, figures


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=REPO / "data", help="data folder to use")
    p.add_argument("--only", choices=SCRIPTS, action="append", help="run only these scripts")
    p.add_argument("--repeat", type=int, default=1, help="runs per script; the median is shown")
    p.add_argument("--device", default="cpu", help="--device passed to each script")
    p.add_argument("--keep", type=Path, help="keep each script's checkpoint and log here")
    args = p.parse_args()
    print("| script | wall time (median) | held-out figures (last run) |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or tmp
        Path(workdir).mkdir(parents=True, exist_ok=True)
        for folder in args.only or SCRIPTS:
            if not (REPO / folder / "train.py").exists():
                continue
            runs = [run_once(folder, args.data_dir, args.device, workdir)
                    for _ in range(args.repeat)]
            walls = ", ".join(f"{w:.0f}" for w, _ in runs)
            print(f"| {folder} | {statistics.median(w for w, _ in runs):.0f} s ({walls}) "
                  f"| {runs[-1][1]} |", flush=True)


if __name__ == "__main__":
    main()
