"""Tests for char-rnn-generation/train.py: bad input gets one error line, never a traceback;
Ctrl-C, a closed pipe and an unwritable checkpoint end cleanly; the data, the split, the
baselines and the sampler do what the file says.

One tiny checkpoint is trained once (module-scoped fixture) and reused by the sampling tests.
"""

import math
import subprocess
import sys

import pytest
import torch
from conftest import REPO, call, load_script, make_names

gen = load_script("char-rnn-generation")
LABELS = ["Ruritanian", "Sylvanian", "Tuscanish"]


def train_args(data_dir, checkpoint, steps=30):
    return ["--data-dir", data_dir, "--checkpoint", checkpoint, "--device", "cpu",
            "--seed", "0", "--max-steps", steps, "--batch-size", "16", "--log-every", "10"]


@pytest.fixture(scope="module")
def trained(names_data, tmp_path_factory):
    """(checkpoint path, stderr of the training run that wrote it)."""
    path = tmp_path_factory.mktemp("generation") / "model.pt"
    code, out, err = call(gen, *train_args(names_data, path))
    assert code == 0, err
    assert path.is_file()
    return path, err


@pytest.fixture(scope="module")
def checkpoint(trained):
    return trained[0]


def sample(checkpoint, *args):
    return call(gen, "--sample", "--checkpoint", checkpoint, "--device", "cpu", *args)


def assert_error(result, *fragments, logged_before=False, code=1):
    """Exit `code` (2: a bad flag) with one line on stderr, 'error: ...', naming each fragment.
    Progress lines ("device cpu" first) may come before it; the error is the last line."""
    exit_code, out, err = result
    assert exit_code == code, (exit_code, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 or logged_before or lines[:-1] == ["device cpu"], err
    assert lines[-1].startswith("error: "), err
    assert out == ""
    for fragment in fragments:
        assert fragment in lines[-1], err


def test_report_gives_the_figures_and_baselines(trained):
    err = trained[1]
    assert err.splitlines()[0] == "device cpu"
    test_line = [line for line in err.splitlines() if line.startswith("test:")]
    assert len(test_line) == 1, err
    for fragment in ["nats/symbol", "bits/symbol", "perplexity", "uniform ln(V = ",
                     "add-one bigram", "dropped", "new", "distinct"]:
        assert fragment in test_line[0], test_line[0]
    nll = float(test_line[0].split("| NLL ")[1].split()[0])
    bits = float(test_line[0].split(" = ")[1].split()[0])
    assert bits == pytest.approx(nll / math.log(2), abs=1e-3)


def test_sampling_prints_names(checkpoint):
    code, out, err = sample(checkpoint, "--language", "Sylvanian", "--num", "7")
    assert code == 0, err
    assert len(out.splitlines()) == 7
    code, out, err = sample(checkpoint, "--language", "all", "--num", "2", "--temperature", "0.5")
    assert code == 0, err
    assert len(out.splitlines()) == 2 * len(LABELS) and err == "device cpu\n"


def test_same_seed_same_names(checkpoint):
    first = sample(checkpoint, "--language", "Tuscanish", "--num", "20", "--seed", "3")[1]
    assert first == sample(checkpoint, "--language", "Tuscanish", "--num", "20", "--seed", "3")[1]
    assert first != sample(checkpoint, "--language", "Tuscanish", "--num", "20", "--seed", "4")[1]
    assert "same seed, same names" in " ".join(call(gen, "--help")[1].split())


def test_names_that_never_end_are_redrawn(checkpoint, monkeypatch):
    monkeypatch.setattr(gen, "MAX_LEN", 6)  # the training names have 4 to 10 letters
    code, out, err = sample(checkpoint, "--language", "Ruritanian", "--num", "300")
    assert code == 0, err
    names = out.splitlines()
    assert len(names) == 300 and all(len(name) <= 5 for name in names)  # 6th symbol: END
    assert max(len(name) for name in names) == 5  # none longer: unended ones were drawn again
    monkeypatch.setattr(gen, "MAX_LEN", 0)  # nothing can end: an error, not an endless loop
    assert_error(sample(checkpoint, "--language", "Sylvanian"), "do not end within 0")


def test_sampler_draws_from_the_model(checkpoint):
    """The batched sampler with finished names leaving the batch: first letters follow the
    model's own p(first letter | language), renormalised over the letters (END may not come
    first), and no name holds PAD, START or END."""
    model = gen.load_checkpoint(checkpoint, torch.device("cpu"))
    chars = model.chars
    torch.manual_seed(0)
    names = gen.sample(model, LABELS[1], 4000, torch.device("cpu"))
    assert len(names) == 4000 and all(set(name) <= set(chars) for name in names)
    with torch.inference_mode():
        logits = model(torch.tensor([1]), torch.tensor([[gen.START]]))[0][0, -1]  # (vocab,)
        logits[[gen.PAD, gen.START, gen.END]] = -math.inf  # as the sampler does at t = 0
        p = logits.softmax(-1)[gen.N_SPECIAL:]  # (chars,): p(first letter)
    seen = torch.tensor([sum(name[:1] == c for name in names) / 4000 for c in chars])
    assert (seen - p).abs().max() < 0.04, (seen, p)


def test_sampler_never_draws_pad_or_start(checkpoint):
    """PAD and START get -inf before each draw, so even a model that favours them above all
    never emits them. Every symbol drawn, END aside, is fed back as the next input, so the
    inputs after each batch's first call show every draw."""
    model = gen.load_checkpoint(checkpoint, torch.device("cpu"))
    with torch.no_grad():
        model.head.bias[[gen.PAD, gen.START]] += 50  # unmasked, softmax would pick them
    fed = []
    forward = model.forward

    def recording_forward(labels, inputs, hidden=None):
        if hidden is not None:  # the first call of a batch reads START, which no draw gave
            fed.append(inputs[:, -1].clone())
        return forward(labels, inputs, hidden)

    model.forward = recording_forward
    torch.manual_seed(0)
    assert len(gen.sample(model, LABELS[2], 200, torch.device("cpu"))) == 200
    drawn = torch.cat(fed)
    assert len(drawn) >= 200 * 3  # the training names have 4 to 10 letters
    assert not torch.isin(drawn, torch.tensor([gen.PAD, gen.START])).any()


def test_no_empty_names_at_temperature_2(checkpoint):
    """END drawn first would print an empty line; at temperature 2 the tiny model would draw it
    first often (checked), yet no name comes out empty."""
    model = gen.load_checkpoint(checkpoint, torch.device("cpu"))
    with torch.inference_mode():
        logits = model(torch.arange(3), torch.full((3, 1), gen.START))[0][:, -1] / 2  # (3, vocab)
        logits[:, [gen.PAD, gen.START]] = -math.inf
        p_end = logits.softmax(-1)[:, gen.END]  # (3,): p(END first), were it allowed
    assert 3000 * p_end.min() > 5, p_end  # unmasked, 3,000 names would hold some empty ones
    code, out, err = sample(checkpoint, "--language", "all", "--num", "3000", "--temperature", 2)
    assert code == 0, err
    names = out.splitlines()
    assert len(names) == 3 * 3000 and "" not in names


def test_sampler_stops_when_every_name_has_ended(checkpoint):
    """No model call on an empty batch: the loop ends with the last name."""
    model = gen.load_checkpoint(checkpoint, torch.device("cpu"))
    rows_per_call = []
    forward = model.forward

    def counting_forward(labels, inputs, hidden=None):
        rows_per_call.append(len(inputs))
        return forward(labels, inputs, hidden)

    model.forward = counting_forward
    torch.manual_seed(0)
    assert len(gen.sample(model, LABELS[0], 50, torch.device("cpu"))) == 50
    assert min(rows_per_call) > 0, rows_per_call
    assert len(rows_per_call) < gen.MAX_LEN  # the training names have 4 to 10 letters


def test_unknown_language_lists_known_ones(checkpoint):
    assert_error(sample(checkpoint, "--language", "Ruritanian", "Klingon"), "--language", *LABELS)


def test_all_with_a_language(checkpoint):
    code, out, err = sample(checkpoint, "--language", "all", "Ruritanian", "--num", 2)
    assert code == 0 and len(out.splitlines()) == 2 * len(LABELS), err


@pytest.mark.parametrize("flag, value", [("--temperature", "warm"), ("--num", "many")])
def test_bad_sampling_flags(checkpoint, flag, value):
    assert_error(sample(checkpoint, flag, value), flag, code=2)


def test_bad_training_flags(names_data, tmp_path):
    args = train_args(names_data, tmp_path / "m.pt")
    assert_error(call(gen, *args, "--batch-size", "1.5"), "--batch-size", code=2)
    assert_error(call(gen, *args, "--lr", "fast"), "--lr", code=2)
    assert_error(call(gen, *args, "--epochs", "two"), "--epochs", code=2)
    assert_error(call(gen, *args, "--no-such-flag"), "--no-such-flag", code=2)
    assert not (tmp_path / "m.pt").exists()


def test_sampling_before_training(tmp_path):
    assert_error(sample(tmp_path / "missing.pt"), "no usable checkpoint at",
                 "train one: python char-rnn-generation/train.py")


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"this is not a checkpoint")
    assert_error(sample(path), "no usable checkpoint")


def test_foreign_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"kind": "char-rnn-classification", "config": {}, "model": {}}, path)
    assert_error(sample(path), "no usable checkpoint", "train one: python char-rnn-generation")
    torch.save([1, 2, 3], path)
    assert_error(sample(path), "no usable checkpoint")


def test_damaged_checkpoint(checkpoint, tmp_path):
    ckpt = torch.load(checkpoint, weights_only=True)
    ckpt["config"]["hidden_size"] += 1  # weights no longer fit the model
    path = tmp_path / "model.pt"
    torch.save(ckpt, path)
    assert_error(sample(path), "no usable checkpoint")


def test_cuda_without_cuda(checkpoint, monkeypatch):
    monkeypatch.setattr(gen.torch.cuda, "is_available", lambda: False)
    assert_error(sample(checkpoint, "--device", "cuda"), "cuda")


def test_auto_device_is_never_mps(monkeypatch):
    monkeypatch.setattr(gen.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gen.torch.backends.mps, "is_available", lambda: True)
    assert gen.pick_device("auto") == torch.device("cpu")


def test_closed_pipe_ends_quietly(checkpoint):
    """`--sample --num 20000 | head -1`: the reader leaves after one line."""
    cmd = [sys.executable, str(REPO / "char-rnn-generation" / "train.py"), "--sample",
           "--checkpoint", str(checkpoint), "--device", "cpu", "--num", "20000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip()  # one name, like head -1
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1, err
    assert "Traceback" not in err and "Error" not in err, err


def test_reading_the_names(tmp_path):
    names = tmp_path / "names"
    names.mkdir()
    (names / "Czech.txt").write_bytes("Šimon\n\n  Novák \nŠimon\n\u200b\n".encode()
                                      + b"Dvo\xf8ak\n")  # a stray Latin-1 byte
    (names / "English.txt").write_text("Smith\nNovak\n", encoding="utf-8")
    labels, pairs = gen.read_names(tmp_path)
    assert labels == ["Czech", "English"]
    # transliterated, stripped, blank and empty-after-transliteration lines dropped, each
    # (name, label) pair once; the bad byte costs its letter, not the run
    assert pairs == [("Dvoak", 0), ("Novak", 0), ("Novak", 1), ("Simon", 0), ("Smith", 1)]


def test_split_by_name(tmp_path):
    pairs = [(f"Name{i}", i % 3) for i in range(50)] + [("Name7", 1), ("Name8", 2)]
    train, val, test = gen.split_by_name(pairs, seed=0)
    assert sorted(train + val + test) == sorted(pairs)
    sides = [{name for name, _ in part} for part in (train, val, test)]
    assert [len(side) for side in sides] == [40, 5, 5]  # int(0.8 * 50), int(0.9 * 50)
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert gen.split_by_name(pairs, seed=0) == [train, val, test]
    assert gen.split_by_name(pairs, seed=1) != [train, val, test]


def test_encode_and_teacher_forcing():
    data = gen.encode([("ab", 0), ("b", 1), ("ax", 1)], ["a", "b"])  # a: token 3, b: token 4
    assert data.unseen == 1  # "x" never seen in training
    assert data.labels.tolist() == [0, 1]
    assert data.tokens.tolist() == [[gen.START, 3, 4, gen.END], [gen.START, 4, gen.END, gen.PAD]]
    seen = []

    def model(labels, inputs):  # records what batch_loss feeds it; uniform logits
        seen.append((labels.tolist(), inputs.tolist()))
        return torch.zeros(*inputs.shape, 5), None

    loss, symbols = gen.batch_loss(model, data, torch.tensor([1, 0]), "cpu", reduction="sum")
    S, E = gen.START, gen.END
    assert seen == [([1, 0], [[S, 4, E], [S, 3, 4]])]  # the END fed after "b" is never scored
    assert symbols == 5  # targets [4, E, pad] and [3, 4, E]: the pad is not counted
    # uniform over all 5 outputs, PAD and START included: the NLL's softmax covers them all
    assert loss.item() == pytest.approx(5 * math.log(5))


def test_bigram_baseline():
    """Per-language add-one bigram: exact on a toy case, and a language it never saw in
    training scores exactly the uniform ln(V)."""
    chars = ["a", "b"]  # V = 3 predictable symbols (a, b, END)
    train = gen.encode([("ab", 0)], chars)
    # every bigram of "ab" (START>a, a>b, b>END) was counted once: p = (1 + 1) / (1 + 3)
    assert gen.bigram_nll(train, train, 2, len(chars)) == pytest.approx(-math.log(2 / 4))
    unseen = gen.encode([("ab", 1), ("ba", 1)], chars)
    assert gen.bigram_nll(train, unseen, 2, len(chars)) == pytest.approx(math.log(3))


def test_model_beats_the_baselines_it_prints(trained):
    line = [line for line in trained[1].splitlines() if line.startswith("test:")][0]
    nll = float(line.split("| NLL ")[1].split()[0])
    uniform = float(line.split("uniform ln(V = ")[1].split(") ")[1].split()[0])
    assert nll < uniform  # 30 steps on a tiny set: better than a uniform guess, at least


def test_data_folder_without_txt_files(tmp_path):
    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "README.md").write_text("no data here\n")
    assert_error(call(gen, *train_args(tmp_path, tmp_path / "m.pt")), "names/<label>.txt")


def test_too_few_names(tmp_path):
    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "Tiny.txt").write_text("Ab\nCd\nEf\n")
    assert_error(call(gen, *train_args(tmp_path, tmp_path / "m.pt")), "10+ distinct names")


def test_unreadable_data_file(tmp_path):
    (tmp_path / "names" / "English.txt").mkdir(parents=True)  # exists, cannot be read as text
    assert_error(call(gen, *train_args(tmp_path, tmp_path / "m.pt")), "Is a directory",
                 str(tmp_path / "names" / "English.txt"))


def test_failed_download(tmp_path):
    # conftest points the download at a file:// URL that does not exist.
    assert_error(call(gen, *train_args(tmp_path / "empty", tmp_path / "m.pt")),
                 "urlopen error", logged_before=True)


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


def test_dropped_names_are_counted(tmp_path):
    """A held-out name with a character no training name has is dropped, and the log line of
    the split counts those of validation and of test; the test: line repeats the test count."""
    names = tmp_path / "names"
    make_names(tmp_path)
    rare = [f"Zu{c}ka" for c in "0123456789!#$%&+=?@^~"]  # each character in one name only
    with open(names / "Tuscanish.txt", "a", encoding="utf-8") as f:
        f.write("\n".join(rare) + "\n")
    labels, pairs = gen.read_names(tmp_path)
    train, val, test = gen.split_by_name(pairs, seed=0)
    expected = [sum(name in rare for name, _ in side) for side in (val, test)]
    assert sum(expected) > 0  # the split puts some rare names on the held-out sides
    code, out, err = call(gen, *train_args(tmp_path, tmp_path / "m.pt", steps=2))
    assert code == 0, err
    first = [line for line in err.splitlines() if line.startswith("train ")][0]
    assert f"({expected[0]} and {expected[1]} dropped: unseen character)" in first, first
    test_line = [line for line in err.splitlines() if line.startswith("test:")][0]
    assert f"({expected[1]} dropped: unseen character)" in test_line, test_line
