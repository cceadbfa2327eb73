"""Bad-input tests for char-rnn-generation/train.py: one-line errors, no tracebacks.

One tiny checkpoint is trained once (module-scoped fixture) and reused by the sampling tests.
"""

import zipfile

import pytest
import torch
from conftest import call, load_script, make_names

gen = load_script("char-rnn-generation")
LABELS = ["Ruritanian", "Sylvanian", "Tuscanish"]


def train_args(data_dir, checkpoint, steps=30):
    return ["--data-dir", data_dir, "--checkpoint", checkpoint, "--device", "cpu",
            "--seed", "0", "--max-steps", steps, "--batch-size", "16", "--log-every", "10"]


@pytest.fixture(scope="module")
def checkpoint(names_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("generation") / "model.pt"
    code, out, err = call(gen, *train_args(names_data, path))
    assert code == 0, err
    assert path.is_file()
    assert "nats/char" in err and "distinct" in err
    return path


def sample(checkpoint, *args):
    return call(gen, "--sample", "--checkpoint", checkpoint, "--device", "cpu", *args)


def assert_error(result, *fragments, logged_before=False):
    """Exit 1 with exactly one line on stderr, starting 'error:', mentioning each fragment."""
    code, out, err = result
    assert code == 1, (code, err)
    assert "Traceback" not in err
    if logged_before:  # progress lines may come first; the error is the last line
        err = err.strip().splitlines()[-1]
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert out == ""
    for fragment in fragments:
        assert fragment in err, err


def test_sampling_prints_names(checkpoint):
    code, out, err = sample(checkpoint, "--language", "Sylvanian", "--num", "7")
    assert code == 0, err
    assert len(out.splitlines()) == 7
    code, out, err = sample(checkpoint, "--language", "all", "--num", "2", "--start", "Ka",
                            "--temperature", "0.5", "--top-k", "3")
    assert code == 0, err
    assert len(out.splitlines()) == 2 * len(LABELS)
    assert all(name.startswith("Ka") for name in out.splitlines())
    assert all(f"# {label}" in err for label in LABELS)


def test_start_is_transliterated(checkpoint):
    code, out, err = sample(checkpoint, "--language", "Tuscanish", "--num", "3", "--start", "Bé")
    assert code == 0, err
    assert all(name.startswith("Be") for name in out.splitlines())


def test_unknown_language_lists_known_ones(checkpoint):
    assert_error(sample(checkpoint, "--language", "Ruritanian", "Klingon"), "'Klingon'", *LABELS)


def test_start_with_unseen_characters(checkpoint):
    assert_error(sample(checkpoint, "--language", "Ruritanian", "--start", "Ka#9"), "#9")
    assert_error(sample(checkpoint, "--start", "\U0001f600"), "never saw")  # unidecode: ""


def test_all_with_a_language_and_huge_num(checkpoint):
    code, out, err = sample(checkpoint, "--language", "all", "Ruritanian", "--num", 2)
    assert code == 0 and len(out.splitlines()) == 2 * len(LABELS), err
    assert_error(sample(checkpoint, "--num", 10**12), "--num")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "1e-40"])
def test_bad_temperature(checkpoint, value):
    assert_error(sample(checkpoint, "--temperature", value), "--temperature")


@pytest.mark.parametrize("flag", ["--num", "--top-k"])
def test_bad_counts(checkpoint, flag):
    assert_error(sample(checkpoint, flag, "-1" if flag == "--top-k" else "0"), flag)


def test_sampling_before_training(tmp_path):
    assert_error(sample(tmp_path / "missing.pt"), "no checkpoint at", "train one first")


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"this is not a checkpoint")
    assert_error(sample(path), "not a usable checkpoint")


def test_foreign_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"kind": "char-rnn-classification", "config": {}, "model": {}}, path)
    assert_error(sample(path), "char-rnn-classification checkpoint", "char-rnn-generation")
    torch.save([1, 2, 3], path)
    assert_error(sample(path), "not a usable checkpoint")


def test_damaged_checkpoint(checkpoint, tmp_path):
    ckpt = torch.load(checkpoint, weights_only=True)
    ckpt["config"]["hidden_size"] += 1  # weights no longer fit the model
    path = tmp_path / "model.pt"
    torch.save(ckpt, path)
    assert_error(sample(path), "not a usable checkpoint")


def test_cuda_without_cuda(checkpoint, monkeypatch):
    monkeypatch.setattr(gen.torch.cuda, "is_available", lambda: False)
    assert_error(sample(checkpoint, "--device", "cuda"), "cuda")


def test_data_folder_without_txt_files(tmp_path):
    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "README.md").write_text("no data here\n")
    assert_error(call(gen, *train_args(tmp_path, tmp_path / "m.pt")), "no <label>.txt files")


def test_unreadable_data_file(tmp_path):
    (tmp_path / "names" / "English.txt").mkdir(parents=True)  # exists, cannot be read as text
    assert_error(call(gen, *train_args(tmp_path, tmp_path / "m.pt")), "cannot read")


def test_download_unpacks_archive(tmp_path, monkeypatch):
    """The first-run download, pointed at a local archive laid out like the real one."""
    names = make_names(tmp_path / "src", per_language=20) / "names"
    with zipfile.ZipFile(tmp_path / "data.zip", "w") as z:
        for f in names.iterdir():
            z.write(f, f"data/names/{f.name}")
    monkeypatch.setattr(gen, "DATA_URL", (tmp_path / "data.zip").as_uri())
    code, _, err = call(gen, *train_args(tmp_path / "fresh", tmp_path / "m.pt", steps=2))
    assert code == 0, err
    assert len(list((tmp_path / "fresh" / "names").glob("*.txt"))) == 3
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == ["names"]  # nothing left behind


def test_failed_download(tmp_path):
    # conftest points the download at a file:// URL that does not exist.
    assert_error(call(gen, *train_args(tmp_path / "empty", tmp_path / "m.pt")),
                 "could not download", "--data-dir", logged_before=True)


def test_bad_training_flags(names_data, tmp_path):
    args = train_args(names_data, tmp_path / "m.pt")
    assert_error(call(gen, *args, "--batch-size", "0"), "--batch-size")
    assert_error(call(gen, *args, "--lr", "-1"), "--lr")
    assert_error(call(gen, *args, "--lr", "nan"), "--lr")
    assert_error(call(gen, *args, "--checkpoint", ""), "--checkpoint")


def test_any_folder_of_labels(tmp_path):
    """Not just surnames: two labels of made-up words train and sample the same way."""
    names = tmp_path / "names"
    names.mkdir()
    (names / "Bubbly.txt").write_text("\n".join(f"Bu{c}{v}la" for c in "bdgmnpz"
                                                for v in "aeiou") + "\n")
    (names / "Rocky.txt").write_text("\n".join(f"Kr{v}{c}ok" for c in "gkrtz"
                                               for v in "aou") + "\n")
    path = tmp_path / "m.pt"
    code, out, err = call(gen, *train_args(tmp_path, path, steps=10))
    assert code == 0, err
    code, out, err = sample(path, "--language", "Rocky", "--num", "4")
    assert code == 0, err
    assert len(out.splitlines()) == 4
