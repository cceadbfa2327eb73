"""The plumbing the three scripts share: the same code in each file, checked here, and the
promises it makes, checked for every script (checkpoint layout and atomic writing, one error
line for a path that cannot be written, the download, Ctrl-C).

The scripts import nothing from each other, so a reader can copy one file and have it all.
Only this test keeps the copies of `log`, `download`, `save_checkpoint` and `pick_device`
byte for byte the same.
"""

import ast
import zipfile

import pytest
import torch
from conftest import REPO, SCRIPTS, call, load_script, make_names, make_pairs

PLUMBING = ["log", "download", "save_checkpoint", "pick_device"]
ANSWER = {  # each script's way to answer from a checkpoint
    "char-rnn-classification": ["--predict", "Hinton"],
    "char-rnn-generation": ["--sample", "--num", "2"],
    "seq2seq-translation": ["--translate", "je suis grand ."],
}


@pytest.fixture(scope="module")
def scripts():
    return {folder: load_script(folder) for folder in SCRIPTS}


def data_for(folder, names_data, pairs_data):
    return pairs_data if folder == "seq2seq-translation" else names_data


def train_args(data, checkpoint, steps=2):
    return ["--data-dir", data, "--checkpoint", checkpoint, "--device", "cpu",
            "--max-steps", steps, "--batch-size", 16]


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def sources(folder):
    """Each top-level function's source text, by name."""
    text = (REPO / folder / "train.py").read_text(encoding="utf-8")
    return {node.name: ast.get_source_segment(text, node) for node in ast.parse(text).body
            if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("name", PLUMBING)
def test_plumbing_is_the_same_code_in_all_three(name):
    copies = {folder: sources(folder).get(name) for folder in SCRIPTS}
    assert all(copies.values()), f"{name} is missing from {copies}"
    first = copies[SCRIPTS[0]]
    for folder, text in copies.items():
        assert text == first, f"{name} in {folder} differs from {SCRIPTS[0]}"


@pytest.mark.parametrize("folder", SCRIPTS)
def test_checkpoint_layout_rebuilds_the_model(scripts, folder, names_data, pairs_data, tmp_path):
    path = tmp_path / "deep" / "er" / "m.pt"  # a missing folder is created
    code, _, err = call(scripts[folder], *train_args(data_for(folder, names_data, pairs_data),
                                                     path), "--log-every", 1)
    assert code == 0, err
    state = torch.load(path, weights_only=True)
    assert sorted(state) == ["config", "kind", "model"] and state["kind"] == folder
    assert not list(path.parent.glob("*.tmp"))
    model = scripts[folder].load_checkpoint(path, torch.device("cpu"))
    assert model.config == state["config"]


@pytest.mark.parametrize("folder", SCRIPTS)
@pytest.mark.parametrize("bad", ["under a file", "a folder", "tmp is a folder"])
def test_unwritable_checkpoint_fails_at_the_first_save(scripts, folder, bad, names_data,
                                                       pairs_data, tmp_path):
    """No check before training: the first epoch's save finds a bad path, seconds in, and
    main() reports the OSError in one line that names it."""
    (tmp_path / "file").write_text("not a folder")
    path = {"under a file": tmp_path / "file" / "m.pt", "a folder": tmp_path,
            "tmp is a folder": tmp_path / "m.pt"}[bad]
    (tmp_path / "m.pt.tmp").mkdir()
    data = data_for(folder, names_data, pairs_data)
    code, out, err = call(scripts[folder], *train_args(data, path, steps=200), "--epochs", 1)
    assert code == 1 and out == "" and "Traceback" not in err, err
    *progress, last = err.splitlines()
    assert last.startswith("error: [Errno") and str(tmp_path) in last, err  # names the path
    assert "epoch 1/1 | step" in "".join(progress) and "error:" not in "".join(progress), err


@pytest.mark.parametrize("folder", SCRIPTS)
def test_an_interrupted_save_leaves_the_last_checkpoint_whole(scripts, folder, tmp_path,
                                                              monkeypatch):
    """The new checkpoint goes to m.pt.tmp and is renamed over m.pt only once written."""
    module = scripts[folder]
    path = tmp_path / "m.pt"
    model = torch.nn.Linear(1, 1)
    model.config = {}
    module.save_checkpoint(path, model)
    before = path.read_bytes()

    def half_then_ctrl_c(obj, f):  # Ctrl-C in the middle of writing
        f.write(b"half a checkp")
        raise KeyboardInterrupt

    monkeypatch.setattr(module.torch, "save", half_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        module.save_checkpoint(path, model)
    assert path.read_bytes() == before


def archive_of_both(tmp_path):
    """A zip laid out like the tutorial's: data/names/*.txt and data/eng-fra.txt."""
    names = make_names(tmp_path / "src", per_language=20) / "names"
    pairs = make_pairs(tmp_path / "src") / "eng-fra.txt"
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in names.iterdir():
            z.write(f, f"data/names/{f.name}")
        z.write(pairs, "data/eng-fra.txt")
    return archive


@pytest.mark.parametrize("folder", SCRIPTS)
def test_one_download_serves_all_three(scripts, folder, tmp_path, monkeypatch):
    monkeypatch.setattr(scripts[folder], "DATA_URL", archive_of_both(tmp_path).as_uri())
    target = tmp_path / "fresh"
    code, _, err = call(scripts[folder], *train_args(target, tmp_path / "m.pt"))
    assert code == 0, err
    assert sorted(p.name for p in target.iterdir()) == ["eng-fra.txt", "names"]  # nothing else
    assert len(list((target / "names").glob("*.txt"))) == 3


@pytest.mark.parametrize("folder", SCRIPTS)
def test_data_dir_naming_a_file(scripts, folder, tmp_path):
    (tmp_path / "data.txt").write_text("not a folder")
    code, _, err = call(scripts[folder], *train_args(tmp_path / "data.txt", tmp_path / "m.pt"))
    assert code == 1 and "Traceback" not in err, err
    assert err.splitlines()[-1] == f"error: [Errno 17] File exists: '{tmp_path / 'data.txt'}'"


@pytest.mark.parametrize("folder", SCRIPTS)
def test_another_scripts_checkpoint_gets_one_line(scripts, folder, names_data, pairs_data,
                                                  tmp_path):
    """A real checkpoint of each other script, and one of this script whose config no longer
    fits its model (an older layout), each get one line from load_checkpoint: no traceback."""
    paths = []
    for other in SCRIPTS:
        path = tmp_path / f"{other}.pt"
        code, _, err = call(scripts[other], *train_args(data_for(other, names_data, pairs_data),
                                                        path, steps=1), "--epochs", 1)
        assert code == 0, err
        if other == folder:  # this script's, with a setting its model no longer takes
            state = torch.load(path, weights_only=True)
            state["config"]["attention"] = "luong"
            torch.save(state, path)
        paths.append(path)
    for path in paths:
        code, out, err = call(scripts[folder], "--checkpoint", path, "--device", "cpu",
                              *ANSWER[folder])
        assert code == 1 and out == "" and "Traceback" not in err, err
        assert err.splitlines()[-1].startswith(f"error: no usable checkpoint at {path} ("), err


@pytest.mark.parametrize("folder", SCRIPTS)
@pytest.mark.parametrize("saves", [0, 1])
def test_ctrl_c_during_training_is_one_line(scripts, folder, saves, names_data, pairs_data,
                                            tmp_path, monkeypatch):
    """Ctrl-C: 'interrupted', exit 130. A model saved before it stays usable; with no save yet,
    an older file at the path is left as it was."""
    path = tmp_path / "m.pt"
    path.write_bytes(b"an older run's checkpoint")

    def train_then_interrupt(args, model, train_set, val_set, device, save):
        for _ in range(saves):
            save(model)
        raise KeyboardInterrupt

    monkeypatch.setattr(scripts[folder], "train", train_then_interrupt)
    code, out, err = call(scripts[folder], *train_args(data_for(folder, names_data, pairs_data),
                                                       path))
    assert code == 130 and out == "" and "Traceback" not in err, err
    assert err.splitlines()[-1] == "interrupted"
    if saves:
        assert scripts[folder].load_checkpoint(path, torch.device("cpu"))
    else:
        assert path.read_bytes() == b"an older run's checkpoint"


@pytest.mark.parametrize("folder", SCRIPTS)
def test_ctrl_c_while_answering_says_only_interrupted(scripts, folder, tmp_path, monkeypatch):
    monkeypatch.setattr(scripts[folder], "load_checkpoint", interrupt)
    code, out, err = call(scripts[folder], "--checkpoint", tmp_path / "m.pt", "--device", "cpu",
                          *ANSWER[folder])
    assert code == 130 and out == "" and "Traceback" not in err, err
    assert err.splitlines() == ["device cpu", "interrupted"]
