"""The conventions the three scripts share, checked side by side.

The scripts share no code, so nothing but this file keeps them alike: the shared flags exist
with the same defaults and help, the same failure gives the same words, and `--help` names
the same conventions (CUDA first, Apple's MPS only when asked for and untested).
"""

import re

import pytest
import torch
from conftest import REPO, SCRIPTS, call, load_script

# flag -> (default as --help prints it, the help text every script gives it)
SHARED = {
    "--checkpoint": (None, "the model file"),
    "--device": ("auto", "auto: cuda if present, else cpu; mps (untested) only if asked"),
    "--seed": ("0", "seeds the split, the weights"),
    "--max-steps": ("0", "stop after N steps (0: no limit)"),
    "--lr": (None, "peak learning rate of AdamW"),
    "--log-every": ("50", "print progress every N steps"),
    "--epochs": (None, "passes over the training"),
    "--batch-size": (None, ""),
    "--data-dir": (None, ""),
}


@pytest.fixture(scope="module")
def scripts():
    return {folder: load_script(folder) for folder in SCRIPTS}


def help_of(module):
    code, out, err = call(module, "--help")
    assert code == 0 and err == "", err
    return " ".join(out.split("options:", 1)[1].split())  # argparse wraps lines where it likes


@pytest.mark.parametrize("folder", SCRIPTS)
def test_shared_flags_defaults_and_help(scripts, folder):
    text = help_of(scripts[folder])
    for flag, (default, words) in SHARED.items():
        entry = re.search(rf"{flag} \S+ (.*?)\(default: (\S+)\)", text)
        assert entry, f"{folder}: {flag} missing from --help"
        assert words in entry.group(1), f"{folder}: {flag} help is {entry.group(1)!r}"
        if default is not None:
            assert entry.group(2) == default, f"{folder}: {flag} default {entry.group(2)}"
    squeezed = text.replace(" ", "")  # argparse may also break a path after a hyphen
    assert f"(default:{REPO / folder / 'model.pt'})" in squeezed
    assert f"(default:{REPO / 'data'})" in squeezed


FAILURES = [  # the same mistake, made with each script, must give the same words
    (["--seed", "x"], "error: argument --seed: invalid int value: 'x'"),
    (["--epochs", "2.5"], "error: argument --epochs: invalid int value: '2.5'"),
    (["--lr", "fast"], "error: argument --lr: invalid float value: 'fast'"),
    (["--device", "tpu"], "error: argument --device: invalid choice: 'tpu' "
                          "(choose from auto, cpu, cuda, mps)"),
    (["--no-such-flag"], "error: unrecognized arguments: --no-such-flag"),
]


@pytest.mark.parametrize("flags, message", FAILURES, ids=[" ".join(f) for f, _ in FAILURES])
def test_same_failure_same_words(scripts, flags, message):
    for folder, module in scripts.items():
        code, out, err = call(module, *flags)
        assert (code, out) == (2, ""), f"{folder}: {err}"
        assert err.strip().replace('"', "'").replace("'auto', 'cpu', 'cuda', 'mps'",
                                                     "auto, cpu, cuda, mps") == message, folder


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_device_same_words(scripts):
    for folder, module in scripts.items():
        code, out, err = call(module, "--device", "cuda", "--max-steps", "1")
        assert code == 1 and err.strip().splitlines()[-1] == (
            "error: --device cuda is not available here; use --device cpu or auto"), folder


@pytest.mark.parametrize("folder", SCRIPTS)
def test_first_log_line_and_failed_download(scripts, folder, tmp_path):
    """Offline, the first run says where the data goes by hand, then one error line."""
    code, _, err = call(scripts[folder], "--device", "cpu", "--data-dir", tmp_path / "nothing",
                        "--checkpoint", tmp_path / "m.pt")  # fails offline, after that line
    url = "file:///nonexistent/practical-pytorch/data.zip"  # conftest's offline address
    assert code == 1 and "Traceback" not in err and err.splitlines() == [
        "device cpu",
        f"downloading {url} into {tmp_path / 'nothing'} "
        "(offline? put its data/ files there by hand)",
        "error: <urlopen error [Errno 2] No such file or directory: "
        "'/nonexistent/practical-pytorch/data.zip'>"], err


@pytest.mark.parametrize("folder", SCRIPTS)
def test_a_diverging_run_stops_with_one_line(scripts, folder, names_data, pairs_data, tmp_path):
    """A learning rate so large that the weights become NaN: one line, not a traceback."""
    data = pairs_data if folder == "seq2seq-translation" else names_data
    code, _, err = call(scripts[folder], "--device", "cpu", "--data-dir", data, "--checkpoint",
                        tmp_path / "m.pt", "--lr", "1e30", "--max-steps", 6, "--batch-size", 16)
    assert code == 1 and "Traceback" not in err, err
    assert err.splitlines()[-1] == "error: the loss became nan; try a lower --lr", err


@pytest.mark.parametrize("folder", SCRIPTS)
def test_each_folder_is_one_train_py_of_200_to_400_lines(folder):
    """The user's shape: one runnable train.py per folder, 200-400 lines with comments and blank
    lines, and nothing else to import (a README beside it, checkpoints and caches aside)."""
    python_files = sorted(p.name for p in (REPO / folder).glob("*.py"))
    assert python_files == ["train.py"], python_files
    lines = (REPO / folder / "train.py").read_text(encoding="utf-8").count("\n")
    assert 200 <= lines <= 400, f"{folder}/train.py has {lines} lines"
