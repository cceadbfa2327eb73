"""Shared test helpers: tiny data sets written on the fly, and two ways to run a script.

The scripts share no code with each other, so the tests load each `train.py` by its path.
- `run_script(folder, *args)` runs it as a subprocess, exactly as a user would.
- `call(module, *args)` runs its `main(argv)` in this process (no second torch import, so
  the many bad-input tests stay fast) and returns (exit code, stdout, stderr). A
  `sys.exit("error: ...")` inside the script becomes exit code 1 with that message on stderr,
  which is what the user would see; any other exception escapes and fails the test, which
  is the point: bad input must never end in a traceback.
"""

import contextlib
import importlib.util
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = ["char-rnn-classification", "char-rnn-generation", "seq2seq-translation"]

# Every run in the tests is offline: a download must never be attempted for real. The
# scripts read the archive's address from this variable; a file:// address that does not
# exist fails at once, with no network involved.
os.environ["PRACTICAL_PYTORCH_DATA_URL"] = "file:///nonexistent/practical-pytorch/data.zip"
# The test models are tiny, so one thread is fastest; and two OpenMP threads spin-waiting on
# each other turn a 2-second training into 20 when anything else shares the cores. Set before
# torch is first imported (conftest loads first), so it holds here and in every subprocess.
os.environ["OMP_NUM_THREADS"] = "1"


def load_script(folder):
    """Import <folder>/train.py as a module (the folder names are not valid identifiers)."""
    path = REPO / folder / "train.py"
    spec = importlib.util.spec_from_file_location(folder.replace("-", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(module, *argv, stdin=""):
    """Run module.main(argv) in-process; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8")
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            module.main([str(a) for a in argv])
    except SystemExit as e:
        if isinstance(e.code, str):
            err.write(e.code + "\n")
            code = 1
        else:
            code = e.code or 0
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


def run_script(folder, *argv, stdin="", timeout=120):
    """Run <folder>/train.py as a subprocess, as a user would type it."""
    cmd = [sys.executable, str(REPO / folder / "train.py"), *[str(a) for a in argv]]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)


def make_names(root, per_language=60, seed=0):
    """Write a tiny names/ folder: three made-up 'languages', each with a telling suffix."""
    rng = random.Random(seed)
    consonants, vowels = "bdgklmnprstvz", "aeiou"
    suffixes = {"Ruritanian": ["ov", "enko", "in"], "Sylvanian": ["ski", "czyk", "ak"],
                "Tuscanish": ["ini", "elli", "etti"]}
    names_dir = Path(root) / "names"
    names_dir.mkdir(parents=True, exist_ok=True)
    seen = set()
    for language, ends in suffixes.items():
        names = []
        while len(names) < per_language:
            stem = "".join(rng.choice(consonants) + rng.choice(vowels)
                           for _ in range(rng.randint(1, 3)))
            name = (stem + rng.choice(ends)).capitalize()
            if name not in seen:
                seen.add(name)
                names.append(name)
        (names_dir / f"{language}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return Path(root)


def make_pairs(root, malformed_lines=0):
    """Write a tiny eng-fra.txt: 'subject + adjective' sentences in both languages."""
    subjects = [("i am", "je suis"), ("he is", "il est"), ("she is", "elle est"),
                ("you are", "tu es"), ("we are", "nous sommes"), ("they are", "ils sont")]
    adjectives = [("tall", "grand"), ("happy", "content"), ("tired", "fatigue"),
                  ("ready", "pret"), ("sick", "malade"), ("rich", "riche"), ("late", "en retard"),
                  ("busy", "occupe"), ("hungry", "affame"), ("sad", "triste"), ("calm", "calme"),
                  ("young", "jeune"), ("free", "libre"), ("strong", "fort"), ("lazy", "paresseux"),
                  ("shy", "timide"), ("brave", "courageux"), ("polite", "poli"),
                  ("upset", "contrarie"), ("alone", "seul")]
    lines = [f"{en} {adj_en}.\t{fr} {adj_fr}.\tCC-BY 2.0 (France) Attribution: tatoeba.org"
             for en, fr in subjects for adj_en, adj_fr in adjectives]
    lines += ["this line has no tab and must be skipped"] * malformed_lines
    path = Path(root) / "eng-fra.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(root)


@pytest.fixture(scope="session")
def names_data(tmp_path_factory):
    """A data folder holding a tiny names/ set (shared by the two name scripts)."""
    return make_names(tmp_path_factory.mktemp("names-data"))


@pytest.fixture(scope="session")
def pairs_data(tmp_path_factory):
    """A data folder holding a tiny eng-fra.txt, with two malformed lines mixed in."""
    return make_pairs(tmp_path_factory.mktemp("pairs-data"), malformed_lines=2)
