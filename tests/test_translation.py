"""Bad input for seq2seq-translation/train.py: one-line errors or sane answers, never a traceback.

One tiny model is trained once (module fixture) on conftest's make_pairs data; the tests reuse it.
"""

import pickle
import subprocess
import sys
import zipfile

import pytest
import torch
from conftest import REPO, call, load_script, make_pairs

FOLDER = "seq2seq-translation"


@pytest.fixture(scope="module")
def s2s():
    return load_script(FOLDER)


@pytest.fixture(scope="module")
def trained(s2s, pairs_data, tmp_path_factory):
    """(checkpoint path, stderr of the training run) for a 30-step model."""
    ckpt = tmp_path_factory.mktemp("s2s") / "model.pt"
    code, out, err = call(s2s, "--data-dir", pairs_data, "--checkpoint", ckpt, "--device", "cpu",
                          "--max-steps", 30, "--batch-size", 16, "--log-every", 10, "--beam", 2)
    assert code == 0, err
    assert out == ""  # training prints its report to stderr only
    return ckpt, err


def translate(s2s, ckpt, *args, stdin=""):
    return call(s2s, "--checkpoint", ckpt, "--device", "cpu", "--translate", *args, stdin=stdin)


def one_line_error(result, needle):
    """Exit 1, nothing on stdout, and stderr ends with one 'error: ...' line naming the problem
    (progress lines such as 'downloading ...' may come before it)."""
    code, out, err = result
    lines = err.strip().splitlines()
    assert code == 1 and out == "" and "Traceback" not in err, err
    assert lines[-1].startswith("error: ") and needle in lines[-1], err
    assert sum(line.startswith("error: ") for line in lines) == 1, err


def test_training_reports_and_skips_malformed_lines(trained):
    ckpt, err = trained
    assert ckpt.exists()
    assert "skipped 2 malformed lines" in err
    assert "BLEU-4" in err and "exact match" in err


def test_stdin_keeps_order_and_empty_lines(s2s, trained):
    code, out, err = translate(s2s, trained[0], "-", stdin="je suis grand .\n\nil est triste .\n")
    assert code == 0, err
    lines = out.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == "", out  # 3 lines + final newline
    assert lines[0] and lines[2]


def test_mixed_case_and_stray_punctuation_normalise(s2s, trained):
    _, plain, _ = translate(s2s, trained[0], "je suis grand .")
    code, messy, err = translate(s2s, trained[0], "  JE   Suis GRAND. ")
    assert code == 0 and messy == plain, err
    code, out, err = translate(s2s, trained[0], "je suis ; grand ?! (\u00e9)")
    assert code == 0 and len(out.splitlines()) == 1, err


@pytest.mark.parametrize("sentence", ["zorglub blip fnord", "I am happy.", "je suis " * 250],
                         ids=["unknown words", "English", "500 words"])
def test_unknown_english_and_very_long_input_still_translate(s2s, trained, sentence):
    code, out, err = translate(s2s, trained[0], sentence)
    assert code == 0, err
    assert len(out.splitlines()) == 1
    assert "Traceback" not in err


def test_stdin_bytes_that_are_not_utf8_still_translate(trained):
    """A Latin-1 file piped in: the odd bytes are replaced, every line still gets its answer."""
    cmd = [sys.executable, str(REPO / FOLDER / "train.py"), "--checkpoint", str(trained[0]),
           "--device", "cpu", "--translate", "-"]
    run = subprocess.run(cmd, input=b"je suis grand .\nd\xe9j\xe0 l\xe0\n", capture_output=True,
                         timeout=120)
    assert run.returncode == 0 and len(run.stdout.splitlines()) == 2, run.stderr.decode()


def test_show_attention_goes_to_stderr(s2s, trained):
    code, out, err = translate(s2s, trained[0], "il est riche .", "--show-attention")
    assert code == 0 and len(out.splitlines()) == 1
    assert "riche" in err and "<eos>" in err


def test_missing_corrupt_foreign_and_unsafe_checkpoints(s2s, trained, tmp_path):
    one_line_error(translate(s2s, tmp_path / "none.pt", "je suis grand ."), "no checkpoint at")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(trained[0].read_bytes()[:200])
    one_line_error(translate(s2s, corrupt, "x"), "not a usable checkpoint")
    foreign = tmp_path / "foreign.pt"
    torch.save({"kind": "char-rnn-classification", "model": {}}, foreign)
    one_line_error(translate(s2s, foreign, "x"), "char-rnn-classification checkpoint, not")
    broken = tmp_path / "broken.pt"
    state = torch.load(trained[0], weights_only=True)
    state["model"].pop("out.weight")
    torch.save(state, broken)
    one_line_error(translate(s2s, broken, "x"), "not a usable checkpoint")
    unsafe = tmp_path / "unsafe.pt"  # pickles an arbitrary object: weights_only refuses it
    torch.save({"kind": "seq2seq-translation", "payload": pickle.PicklingError("x")}, unsafe)
    one_line_error(translate(s2s, unsafe, "x"), "not a usable checkpoint")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(s2s, trained):
    one_line_error(call(s2s, "--device", "cuda", "--translate", "x"), "not available")


@pytest.mark.parametrize("flags", [["--lr", "0"], ["--lr", "nan"], ["--beam", "0"],
                                   ["--dropout", "1"], ["--checkpoint", ""]])
def test_bad_settings(s2s, flags):
    one_line_error(call(s2s, "--device", "cpu", *flags), "need")


def test_empty_missing_unreadable_and_filtered_out_data(s2s, tmp_path):
    common = ["--checkpoint", tmp_path / "m.pt", "--device", "cpu", "--max-steps", 1]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "eng-fra.txt").write_text("\n\n")
    one_line_error(call(s2s, "--data-dir", tmp_path / "empty", *common), "no pairs")
    # a folder without eng-fra.txt tries the (offline, failing) download
    one_line_error(call(s2s, "--data-dir", tmp_path / "nothing", *common), "could not download")
    (tmp_path / "folder" / "eng-fra.txt").mkdir(parents=True)  # exists, but cannot be read
    one_line_error(call(s2s, "--data-dir", tmp_path / "folder", *common), "cannot read")
    data = make_pairs(tmp_path / "pairs")
    one_line_error(call(s2s, "--data-dir", data, "--max-length", 2, *common), "no pairs")
    assert not (tmp_path / "m.pt").exists()


def test_download_unpacks_archive(s2s, tmp_path, monkeypatch):
    """The first-run download, pointed at a local archive laid out like the real one."""
    data = make_pairs(tmp_path / "src")
    with zipfile.ZipFile(tmp_path / "data.zip", "w") as z:
        z.write(data / "eng-fra.txt", "data/eng-fra.txt")
    monkeypatch.setattr(s2s, "DATA_URL", (tmp_path / "data.zip").as_uri())
    code, _, err = call(s2s, "--data-dir", tmp_path / "fresh", "--checkpoint", tmp_path / "m.pt",
                        "--device", "cpu", "--max-steps", 2, "--beam", 1)
    assert code == 0, err
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == ["eng-fra.txt"]  # nothing else


def test_reverse_trains_english_to_french(s2s, tmp_path):
    data, ckpt = make_pairs(tmp_path / "pairs"), tmp_path / "en-fr.pt"
    code, _, err = call(s2s, "--data-dir", data, "--checkpoint", ckpt, "--device", "cpu",
                        "--reverse", "--all-pairs", "--max-steps", 3, "--beam", 1)
    assert code == 0, err
    code, out, err = translate(s2s, ckpt, "I am happy.")
    assert code == 0 and len(out.splitlines()) == 1, err
    assert "<unk>" not in err  # English words are this model's source vocabulary
