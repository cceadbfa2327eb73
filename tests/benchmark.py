"""Benchmark: each script's default training, its held-out figures, and how fast it answers.

Not part of the test suite (pytest does not collect it): it trains the real models on the real
data, which takes minutes. Each script runs exactly as a user would run it, with default
settings, on the CPU unless --device says otherwise, and writes its checkpoint to a temporary
folder so your own model.pt files are left alone. Pass --data-dir for a copy of the data unzipped
by hand (default: data/ in this repository).

    python tests/benchmark.py                                   # all three scripts, once
    python tests/benchmark.py --only seq2seq-translation --repeat 3
    python tests/benchmark.py --repeat 3 --baseline ../old-checkout   # side by side, interleaved
    python tests/benchmark.py --keep /tmp/bench                 # keep models and logs

It prints one markdown table row per script (and per baseline): the median wall time from start
to final report (the process's whole life, data loading and torch import included), the `test:`
line the script prints at the end of its report, and the median answering speed over the runs,
each with that run's checkpoint, start-up included: the translator over 10,000 French
sentences spread through eng-fra.txt (greedy and default beam), the classifier over 50,000
names, the generator sampling 100,000 Russian names. With --baseline, runs alternate between
the two checkouts, so both see the same machine load; machines are shared and noisy, so
compare medians of runs.
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


def run(cmd, stdin=None):
    """Run cmd; return (wall seconds, stdout, stderr); stop the benchmark if it fails."""
    start = time.perf_counter()
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[1:3])} failed (exit {result.returncode}):\n"
                 f"{result.stderr[-2000:]}")
    return wall, result.stdout, result.stderr


def speed_inputs(data_dir):
    """The answering workloads: (name, extra flags, stdin text, how many answers)."""
    lines = (data_dir / "eng-fra.txt").read_text(encoding="utf-8").splitlines()
    step = max(1, len(lines) // 10_000)  # spread through the file, not its first, shortest lines
    french = "\n".join(line.split("\t")[1] for line in lines[::step][:10_000]) + "\n"
    names = [n for f in sorted((data_dir / "names").glob("*.txt"))
             for n in f.read_text(encoding="utf-8").split()]
    names = "\n".join((names * (50_000 // len(names) + 1))[:50_000]) + "\n"
    return {
        "seq2seq-translation": [("greedy", ["--translate", "-", "--beam", "1"], french, 10_000),
                                ("beam", ["--translate", "-"], french, 10_000)],
        "char-rnn-classification": [("predict", ["--predict", "-"], names, 50_000)],
        "char-rnn-generation": [("sample", ["--sample", "--language", "Russian", "--num",
                                            "100000"], None, 100_000)],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=REPO / "data", help="data folder to use")
    p.add_argument("--only", choices=SCRIPTS, action="append", help="run only these scripts")
    p.add_argument("--repeat", type=int, default=1, help="runs per script; the median is shown")
    p.add_argument("--device", default="cpu", help="--device passed to each script")
    p.add_argument("--keep", type=Path, help="keep each script's checkpoint and log here")
    p.add_argument("--baseline", type=Path, help="another checkout to run side by side")
    p.add_argument("--no-speed", action="store_true", help="skip the answering speed runs")
    args = p.parse_args()
    checkouts = {"this checkout": REPO} | ({"baseline": args.baseline} if args.baseline else {})
    workloads = speed_inputs(args.data_dir)
    print("| script | checkout | wall time, median (runs) | held-out figures (last run) | "
          "answers per second, median (runs) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for folder in args.only or SCRIPTS:
            walls = {label: [] for label in checkouts}
            speeds = {label: {} for label in checkouts}  # after every run: medians
            figures = {}
            for i in range(args.repeat):
                for label, root in checkouts.items():  # interleaved: same load for both
                    ckpt = workdir / f"{folder}-{label.replace(' ', '-')}.pt"
                    cmd = [sys.executable, str(root / folder / "train.py"), "--device",
                           args.device, "--checkpoint", str(ckpt)]
                    wall, _, err = run(cmd + ["--data-dir", str(args.data_dir)])
                    (workdir / f"{ckpt.stem}-{i}.log").write_text(err)
                    walls[label].append(wall)
                    tests = [line for line in err.splitlines() if line.startswith("test:")]
                    figures[label] = tests[-1][5:].strip() if tests else "(none)"
                    speed_runs = [] if args.no_speed else workloads[folder]
                    for name, flags, stdin, count in speed_runs:
                        seconds, out, _ = run(cmd + flags, stdin)
                        answers = len(out.splitlines())  # should be `count`; shown if not
                        speeds[label].setdefault(name, []).append(answers / seconds)
                        if answers != count:
                            print(f"note: {folder} {name}: {answers} answers, not {count}")
            for label in checkouts:
                runs = ", ".join(f"{w:.0f}" for w in walls[label])
                rates = "; ".join(f"{name} {statistics.median(v):,.0f}/s "
                                  f"({', '.join(f'{x:,.0f}' for x in v)})"
                                  for name, v in speeds[label].items())
                print(f"| {folder} | {label} | {statistics.median(walls[label]):.0f} s ({runs}) "
                      f"| {figures[label]} | {rates or '-'} |", flush=True)


if __name__ == "__main__":
    main()
