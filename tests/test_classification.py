"""char-rnn-classification: predictions, the honest split, and every bad input we promise
to answer with one line and a non-zero exit (never a traceback)."""

import subprocess
import sys

import pytest
import torch
from conftest import REPO, call, load_script, make_names

cls = load_script("char-rnn-classification")


@pytest.fixture(scope="module")
def checkpoint(names_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("cls") / "model.pt"
    code, out, err = call(cls, "--data-dir", names_data, "--checkpoint", path, "--device", "cpu",
                          "--max-steps", 30, "--batch-size", 16)
    assert code == 0, err
    assert err.startswith("device cpu\n") and "balanced accuracy" in err
    assert "share 1 (no correction)" in err and out == ""  # the report goes to stderr
    return path


def predict(checkpoint, *names, stdin=""):
    return call(cls, "--checkpoint", checkpoint, "--device", "cpu", "--predict", *names,
                stdin=stdin)


def test_prediction_line_format(checkpoint):
    code, out, _ = predict(checkpoint, "Hinton")
    assert code == 0
    name, *guesses = out.rstrip("\n").split("\t")
    assert name == "Hinton" and len(guesses) == 3
    probs = [float(g.rsplit(" ", 1)[1]) for g in guesses]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.01
    assert {g.rsplit(" ", 1)[0] for g in guesses} == {"Ruritanian", "Sylvanian", "Tuscanish"}


def test_stdin_keeps_order_and_count(checkpoint):
    names = [f"Name{'abc'[i % 3]}{i}" for i in range(2000)]
    code, out, _ = predict(checkpoint, "-", stdin="\n".join(names) + "\n")
    assert code == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == names


def test_stdin_blank_line_gives_blank_line(checkpoint):
    code, out, _ = predict(checkpoint, "-", stdin="Hinton\n\nRossi\n")
    assert code == 0
    lines = out.split("\n")
    assert lines[0].startswith("Hinton\t") and lines[1] == "" and lines[2].startswith("Rossi\t")


@pytest.mark.parametrize("flags", [["--batch-size", "1.5"], ["--lr", "fast"], ["--epochs", "two"],
                                   ["--device", "tpu"], ["--no-such-flag"]])
def test_bad_flags_get_one_line(flags, tmp_path):
    code, _, err = call(cls, *flags, "--data-dir", tmp_path)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err


def test_wrong_contents(checkpoint, tmp_path):
    hollow = tmp_path / "hollow.pt"
    torch.save({"kind": "char-rnn-classification", "config": {}}, hollow)
    code, _, err = predict(hollow, "Hinton")
    assert code == 1 and "no usable checkpoint" in err


def test_foreign_scripts_are_transliterated(checkpoint):
    code, out, err = predict(checkpoint, "Schrödinger", "Пушкин", "山田", "ab" * 5_000)
    assert code == 0, err
    names = [line.split("\t")[0] for line in out.splitlines()]
    assert names[:3] == ["Schrödinger", "Пушкин", "山田"]
    assert all(len(line.split("\t")) == 4 for line in out.splitlines())


def test_unseen_characters_are_unk_in_evaluate_and_predict(checkpoint):
    """One reading everywhere: a character no training name had is UNK, not dropped, so
    --predict prints what evaluate() scores."""
    model = cls.load_checkpoint(checkpoint, torch.device("cpu"))
    name = "Baqqqqkov"  # the tiny data set has no "q"
    x, _ = cls.encode([name], model.stoi, "cpu")
    assert x[0].tolist().count(cls.UNK) == 4

    def printed(text):  # the line --predict should print for `text`, computed by hand
        probs = (cls.predict(model, [text], "cpu") + cls.ALPHA * model.log_prior).softmax(dim=1)
        top_p, top_i = probs[0].topk(3)
        return "\t".join([name] + [f"{model.labels[i]} {p:.2f}"
                                   for p, i in zip(top_p.tolist(), top_i.tolist())]) + "\n"

    code, out, _ = predict(checkpoint, name)
    assert code == 0 and out == printed(name)
    assert out != printed("Bakov")  # what dropping the q's would have printed
    guess = model.labels.index(out.split("\t")[1].split(" ")[0])
    _, [(top1, _)] = cls.evaluate(model, [(name, guess)], "cpu")  # evaluate() agrees
    assert top1 == 1.0


@pytest.mark.parametrize("bad", ["", "   ", "!!!", "1234"])
def test_name_without_letters(checkpoint, bad):
    code, out, err = predict(checkpoint, "Hinton", bad)
    assert code == 1
    assert len(out.splitlines()) == 2 and "\t" not in out.splitlines()[1]  # nothing lost
    assert err.count("error:") == 1 and "no letters" in err


def test_split_shares_no_name():
    examples = [("Abel", 0), ("Abel", 1), ("Abel", 2)] + [(f"N{i}", i % 3) for i in range(300)]
    train, val, test = cls.split_by_name(examples, seed=1)
    sides = [{n for n, _ in part} for part in (train, val, test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sum(map(len, (train, val, test))) == len(examples)
    assert cls.split_by_name(examples, seed=1) == [train, val, test]  # reproducible


def test_predict_before_training(tmp_path):
    code, _, err = predict(tmp_path / "none.pt", "Hinton")
    assert code == 1 and "no usable checkpoint at" in err
    assert err.rstrip().endswith("train one: python char-rnn-classification/train.py")


def test_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"this is not a checkpoint")
    code, _, err = predict(bad, "Hinton")
    assert code == 1 and "no usable checkpoint" in err


class Payload:  # a pickled object: weights_only=True must refuse to run its code
    pass


def test_checkpoint_with_code_and_foreign_checkpoint(tmp_path):
    evil, foreign = tmp_path / "evil.pt", tmp_path / "foreign.pt"
    torch.save({"kind": "char-rnn-classification", "x": Payload()}, evil)
    torch.save({"kind": "char-rnn-generation", "model": {}}, foreign)
    assert predict(evil, "Hinton")[0] == 1
    code, _, err = predict(foreign, "Hinton")
    assert code == 1 and "no usable checkpoint" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(checkpoint):
    code, _, err = call(cls, "--checkpoint", checkpoint, "--device", "cuda", "--predict", "Li")
    assert code == 1 and "--device cuda is not available" in err


def test_missing_data_without_network(tmp_path):
    code, _, err = call(cls, "--data-dir", tmp_path / "nowhere", "--checkpoint", tmp_path / "m.pt")
    assert code == 1 and "urlopen error" in err.splitlines()[-1] and "by hand" in err
    assert not (tmp_path / "m.pt").exists()


def test_folder_without_txt_files(tmp_path):
    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "notes.md").write_text("hello")
    code, _, err = call(cls, "--data-dir", tmp_path, "--checkpoint", tmp_path / "m.pt")
    assert code == 1 and "needs two or more <language>.txt files" in err


def test_unreadable_data_file(tmp_path):
    (tmp_path / "names" / "English.txt").mkdir(parents=True)  # exists, cannot be read as text
    code, _, err = call(cls, "--data-dir", tmp_path, "--checkpoint", tmp_path / "m.pt")
    assert code == 1 and err.count("error:") == 1, err
    assert err.endswith(f"Is a directory: '{tmp_path / 'names' / 'English.txt'}'\n"), err


def test_help_explains_every_flag():
    code, out, _ = call(cls, "--help")
    assert code == 0
    for flag in ["--predict", "--data-dir", "--checkpoint", "--device", "--seed", "--epochs",
                 "--max-steps", "--batch-size", "--lr", "--log-every"]:
        assert flag in out


def test_names_empty_after_unidecode_are_dropped(tmp_path):
    data = make_names(tmp_path, per_language=20)
    with open(data / "names" / "Ruritanian.txt", "a", encoding="utf-8") as f:
        f.write("\ufeff\n\U0001F600\n\u0301\n")  # a lone BOM, an emoji, a combining mark
    _, examples = cls.read_names(data)
    assert len(examples) == 60 and all(name for name, _ in examples)
    code, _, err = call(cls, "--data-dir", data, "--checkpoint", tmp_path / "m.pt",
                        "--max-steps", 2)
    assert code == 0, err


def test_balanced_accuracy_is_the_standard_one():
    # rows: true language, columns: guess. Recalls 3/4 and 1/2: balanced accuracy 0.625
    confusion = torch.tensor([[3, 1, 0], [1, 1, 0], [0, 0, 0]])  # language 2 absent: skipped
    assert cls.balanced(confusion) == pytest.approx(0.625)


def test_top1_per_name_counts_any_of_its_languages(checkpoint):
    model = cls.load_checkpoint(checkpoint, torch.device("cpu"))
    guess = cls.predict(model, ["Abel"], "cpu").argmax(dim=1).item()
    other = (guess + 1) % len(model.labels)
    _, [(top1, confusion)] = cls.evaluate(model, [("Abel", guess), ("Abel", other)], "cpu",
                                          alphas=(0.0,))
    assert top1 == 1.0 and confusion.sum() == 2 and cls.balanced(confusion) == 0.5


def test_prior_is_saved_and_ranks_the_predictions(checkpoint):
    model = cls.load_checkpoint(checkpoint, torch.device("cpu"))
    assert model.log_prior.exp().sum().item() == pytest.approx(1.0)  # log of training shares
    names = ["Hinton", "Rossi", "Kowalski", "Bakov"]
    code, out, _ = predict(checkpoint, *names)
    logits = cls.predict(model, names, "cpu") + cls.ALPHA * model.log_prior
    for line, best in zip(out.splitlines(), logits.argmax(dim=1).tolist()):
        assert line.split("\t")[1].split(" ")[0] == model.labels[best]  # first guess = argmax


def weights(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_every_epoch_saved_and_the_last_ones_averaged(names_data, tmp_path, monkeypatch):
    saves, averaged = [], []  # the weights saved after each epoch; those averaged
    save, update = cls.save_checkpoint, torch.optim.swa_utils.AveragedModel.update_parameters

    def spy_save(path, model):
        saves.append(weights(model))
        save(path, model)

    def spy_update(self, model):
        averaged.append(weights(model))
        update(self, model)

    monkeypatch.setattr(cls, "save_checkpoint", spy_save)
    monkeypatch.setattr(torch.optim.swa_utils.AveragedModel, "update_parameters", spy_update)
    epochs = cls.AVERAGE + 2
    code, _, err = call(cls, "--data-dir", names_data, "--checkpoint", tmp_path / "m.pt",
                        "--epochs", epochs, "--batch-size", 32)
    assert code == 0, err
    assert len(saves) == epochs and len(averaged) == cls.AVERAGE
    for name, value in saves[-1].items():  # the file holds the mean of the last AVERAGE epochs
        mean = torch.stack([w[name] for w in averaged]).mean(dim=0)
        assert torch.allclose(value, mean, atol=1e-6), name
    first = epochs - cls.AVERAGE  # epochs before the window: the model itself is saved
    assert torch.equal(saves[first]["head.weight"], averaged[0]["head.weight"])  # a copy
    assert not torch.equal(saves[0]["head.weight"], saves[1]["head.weight"])


def test_prior_is_the_log_of_the_label_shares():
    model = cls.NameClassifier(list("abc"), ["x", "y"], [3, 1])
    assert model.log_prior.exp().tolist() == pytest.approx([0.75, 0.25])
    assert model.config["label_counts"] == [3, 1]  # so the checkpoint rebuilds it


def test_forward_reads_the_last_layers_final_states():
    torch.manual_seed(0)
    model = cls.NameClassifier(list("abc"), ["x", "y"], [1, 1], embed_size=4, hidden_size=5,
                               dropout=0.0)
    model.rnn = torch.nn.GRU(4, 5, num_layers=2, batch_first=True, bidirectional=True)
    x, lengths = cls.encode(["ab", "ca"], model.stoi, "cpu")  # same length: no padding
    out, _ = model.rnn(model.embed(x))  # (B, T, 2H): the last layer, both directions
    last = torch.cat([out[:, -1, :5], out[:, 0, 5:]], dim=1)  # forward at the end, backward at 0
    assert torch.allclose(model(x, lengths), model.head(last), atol=1e-6)


def test_stdin_of_blank_lines_only(checkpoint):
    code, out, err = predict(checkpoint, "-", stdin="\n\n")
    assert code == 0 and out == "\n\n", err


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_predict_into_a_closed_pipe(checkpoint, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("Bakov\nRazini\n" * 2_000)  # ~150 kB out: more than a pipe holds
    script = REPO / "char-rnn-classification" / "train.py"
    command = (f"'{sys.executable}' '{script}' --device cpu --checkpoint '{checkpoint}' "
               f"--predict - < '{names}' 2> '{tmp_path / 'err'}' | head -1")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("Bakov\t") and result.stdout.count("\n") == 1
    assert (tmp_path / "err").read_text() == "device cpu\n"  # no traceback


def test_stdin_bytes_that_are_not_utf8_still_get_answers(checkpoint):
    """A Latin-1 file piped in: the odd bytes read as U+FFFD, every line gets its answer."""
    cmd = [sys.executable, str(REPO / "char-rnn-classification" / "train.py"), "--checkpoint",
           str(checkpoint), "--device", "cpu", "--predict", "-"]
    run = subprocess.run(cmd, input=b"Hinton\nD\xe9j\xe0vu\n", capture_output=True, timeout=120)
    assert run.returncode == 0 and b"Traceback" not in run.stderr, run.stderr.decode()
    lines = run.stdout.decode("utf-8").splitlines()
    assert len(lines) == 2 and lines[1].startswith("D\ufffdj\ufffdvu\t"), lines
