"""
Classify a surname by its language of origin, one character at a time.

A character-level recurrent network reads a name ("Hinton", "Nguyen", "Dostoevsky") and
predicts which of 18 languages it comes from. This is the first "practical PyTorch" tutorial,
rewritten for PyTorch 2.x: names go through the network in padded, packed batches instead of
one letter at a time, the split is honest (no name is both trained on and tested on), and the
report says how well it does on the rare languages, not only on Russian.

Run it from the repository root (the data is downloaded into data/ on first use):
    python char-rnn-classification/train.py                        # train, test, save model.pt
    python char-rnn-classification/train.py --predict Hinton Satoshi
    cut -f1 my_names.txt | python char-rnn-classification/train.py --predict -

Training prints progress lines to stderr, then a test report: top-1 accuracy, balanced
accuracy (mean recall over languages), recall per language and a confusion matrix drawn as
text. Predictions go to stdout, one line per name, tab-separated, most likely first:
    Hinton<TAB>English 0.97<TAB>Scottish 0.02<TAB>Russian 0.00
"""

import argparse
import math
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence
from unidecode import unidecode

DATA_URL = os.environ.get("PRACTICAL_PYTORCH_DATA_URL",
                          "https://download.pytorch.org/tutorial/data.zip")
HERE = Path(__file__).resolve().parent
PAD, UNK = 0, 1        # ids 0 and 1 of the character vocabulary are reserved
MAX_CHARS = 64         # longer input is cut: the longest surname in the data has 20 letters
EXAMPLES = ["Hinton", "Schmidhuber", "Nguyen", "Dostoevsky", "Satoshi", "Kowalski", "Rossi"]


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# -----------------------------------------------------------------------------
# Data

def download_data(data_dir):
    """Fetch the PyTorch tutorial archive and unpack its data/ folder into data_dir."""
    log(f"downloading {DATA_URL} into {data_dir} ...")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
            archive = Path(tmp) / "data.zip"
            with urllib.request.urlopen(DATA_URL, timeout=60) as response, open(archive, "wb") as f:
                shutil.copyfileobj(response, f)
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
            # Move into place only once everything is unpacked, so an interrupted download
            # never leaves a half-filled names/ folder that looks like real data.
            for item in (Path(tmp) / "data").iterdir():
                if not (data_dir / item.name).exists():
                    os.replace(item, data_dir / item.name)
    except Exception as e:  # no network, HTTP error, truncated or foreign archive, full disk...
        sys.exit(f"error: could not download {DATA_URL} ({e}); fetch it by hand and unzip its "
                 f"data/ folder into {data_dir}, or pass --data-dir")


def read_names(data_dir):
    """Return (labels, examples): labels sorted by file name, examples as (name, label id)."""
    names_dir = data_dir / "names"
    if not names_dir.exists():
        download_data(data_dir)
    files = sorted(names_dir.glob("*.txt"))  # sorted, so label ids are stable across runs
    if not files:
        sys.exit(f"error: no <language>.txt files in {names_dir}; check --data-dir")
    examples = set()  # a set: Arabic.txt repeats ~100 names twenty times over
    for label_id, f in enumerate(files):
        try:
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as e:
            sys.exit(f"error: cannot read {f} ({e.strerror})")
        # unidecode maps every script to plain ASCII ("Schrödinger" -> "Schrodinger"), so the
        # alphabet stays small and a name typed without accents still looks familiar.
        examples.update((unidecode(line).strip(), label_id) for line in lines if line.strip())
    if len({label for _, label in examples}) < 2 or len({n for n, _ in examples}) < 20:
        sys.exit(f"error: {names_dir} needs two or more <language>.txt files and 20+ names")
    return [f.stem for f in files], sorted(examples)


def split_by_name(examples, seed, fractions=(0.8, 0.1)):
    """Split into train/val/test by *distinct name*. Some names are filed under several
    languages ("Abel" is French and German). A split over (name, language) pairs would put
    "Abel" in training under one language and test it under another: the test would measure
    memory, not generalisation. Here every string lands on one side, with all its labels."""
    names = sorted({name for name, _ in examples})
    random.Random(seed).shuffle(names)
    n_train, n_val = int(fractions[0] * len(names)), int(fractions[1] * len(names))
    side = {name: 0 for name in names[:n_train]}
    side.update({name: 1 for name in names[n_train:n_train + n_val]})
    splits = ([], [], [])
    for name, label in examples:
        splits[side.get(name, 2)].append((name, label))
    return splits


def encode(names, stoi, device):
    """Turn names into a padded (batch, time) tensor of character ids plus their lengths.

    The old tutorial fed one name at a time as a one-hot (time, 1, 57) tensor in a Variable;
    an nn.Embedding lookup of integer ids does the same job without the one-hot vectors."""
    lengths = torch.tensor([len(n) for n in names])  # stays on the CPU: packing requires it
    x = torch.full((len(names), int(lengths.max())), PAD, dtype=torch.long)
    for i, name in enumerate(names):
        x[i, :len(name)] = torch.tensor([stoi.get(c, UNK) for c in name])
    return x.to(device), lengths


# -----------------------------------------------------------------------------
# Model

class NameClassifier(nn.Module):
    """Embedding -> bidirectional GRU -> linear layer over the two final hidden states.
    The 2017 tutorial wrote its own RNN cell (a linear layer over [input, hidden]) and looped
    over letters in Python. nn.GRU runs the whole batch in one fused call, and its gates let it
    carry "this name started with Mc" across a long name. Two directions: the forward pass
    ends on the ending (-ov, -ski), the backward pass on the beginning (Mc-, O', Van), so the
    classifier sees both ends of the name fresh."""

    def __init__(self, vocab_size, num_labels, embed_size=64, hidden_size=256, dropout=0.3):
        super().__init__()
        # padding_idx keeps the PAD vector at zero; packing (below) already hides the pads.
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD)
        self.rnn = nn.GRU(embed_size, hidden_size, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, num_labels)

    def forward(self, x, lengths):
        emb = self.drop(self.embed(x))  # (batch, time, embed)
        # Packing tells the GRU where each name really ends, so padding never reaches the
        # final hidden state. enforce_sorted=False sorts by length inside and unsorts h again.
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)                     # h: (2 directions, batch, hidden)
        h = torch.cat([h[0], h[1]], dim=1)          # forward and backward: (batch, 2 * hidden)
        return self.head(self.drop(h))              # (batch, labels): unnormalised logits


# -----------------------------------------------------------------------------
# Training

def save_checkpoint(path, model, config, chars, labels):
    """Write to a temporary file, then rename: Ctrl-C mid-write never leaves a broken file.
    A state_dict and plain lists (not the old torch.save(rnn) pickle) load weights_only."""
    state = {"kind": "char-rnn-classification", "config": config, "model": model.state_dict(),
             "chars": chars, "labels": labels}
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, tmp)
        os.replace(tmp, path)
    except OSError as e:
        sys.exit(f"error: cannot write {path} ({e.strerror}); pass another --checkpoint")


def train(args, model, train_set, val_set, device, save):
    """AdamW with a cosine learning-rate decay; keep the weights with the best val accuracy."""
    # AdamW replaces the old hand-written p.data.add_(-lr, p.grad.data) loop.
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train_set) / args.batch_size)
    total = min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
    epochs = math.ceil(total / steps_per_epoch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    # CrossEntropyLoss = log_softmax + NLLLoss, the pair the old tutorial wrote out by hand.
    # Russian is over half the pairs; weight=... would trade top-1 for rare-language recall.
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    best, step, start, running = -1.0, 0, time.time(), []
    for epoch in range(1, epochs + 1):
        model.train()  # dropout on; predict() below switches it off for validation
        order = torch.randperm(len(train_set), generator=gen).tolist()
        for i in range(0, len(order), args.batch_size):
            batch = [train_set[j] for j in order[i:i + args.batch_size]]
            x, lengths = encode([name for name, _ in batch], model.stoi, device)
            y = torch.tensor([label for _, label in batch], device=device)
            loss = loss_fn(model(x, lengths), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # Clipping keeps one unlucky batch from blowing up the recurrent weights.
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running.append(loss.item())
            if step % args.log_every == 0 or step == total:
                elapsed = time.time() - start
                log(f"epoch {epoch}/{epochs} | step {step}/{total} | loss "
                    f"{sum(running) / len(running):.4f} | {elapsed:.0f}s elapsed, "
                    f"ETA {elapsed / step * (total - step):.0f}s")
                running = []
            if step == total:
                break
        acc = accuracy(model, val_set, device)[0]
        log(f"epoch {epoch}/{epochs} done | val accuracy {acc:.3f}"
            f"{' (best, saved)' if acc > best else ''}")
        if acc > best:
            best = acc
            save()


# -----------------------------------------------------------------------------
# Evaluation

@torch.inference_mode()  # a faster torch.no_grad(), which replaced volatile=True Variables
def predict(model, names, device, batch_size=512):
    """Return a (len(names), labels) tensor of probabilities."""
    model.eval()
    batches = [names[i:i + batch_size] for i in range(0, len(names), batch_size)]
    return torch.cat([model(*encode(b, model.stoi, device)).softmax(dim=1).cpu() for b in batches])


def accuracy(model, dataset, device):
    """Guess every distinct name once; a guess is right if it is *one of* the name's languages:
    99 of the 100 Scottish names are also filed as English, "Abel" is French and German, etc.:
    ~3% of names carry several labels. Scoring (name, language) pairs would count the same
    guess for "Abel" as both right and wrong, so we score each name once, against the set of
    its languages. Returns (accuracy, {name: set of languages}, {name: guess})."""
    languages = {}
    for name, label in dataset:
        languages.setdefault(name, set()).add(label)
    names = sorted(languages)
    guess_of = dict(zip(names, predict(model, names, device).argmax(dim=1).tolist()))
    return sum(guess_of[n] in languages[n] for n in names) / len(names), languages, guess_of


def report(model, test_set, labels, device):
    """Top-1 and balanced accuracy, recall per language, and a text confusion matrix."""
    top1, languages, guess_of = accuracy(model, test_set, device)
    k = len(labels)
    # Recall of a language: the share of its test names classified correctly (as above: as
    # any of their languages, so "Scottish" recall mostly counts "English" guesses). Russian
    # is about half of the names, so always answering "Russian" already gets ~0.5 top-1;
    # balanced accuracy (mean recall over languages) gives every language the same weight.
    members = {i: [n for n in languages if i in languages[n]] for i in range(k)}
    recall = {i: sum(guess_of[n] in languages[n] for n in m) / len(m)
              for i, m in members.items() if m}
    # The confusion matrix counts (name, language) pairs: row = a true language, column = the
    # guess. bincount over truth * k + guess gives each (row, column) cell its own bin.
    truth = torch.tensor([label for _, label in test_set])
    guess = torch.tensor([guess_of[name] for name, _ in test_set])
    confusion = torch.bincount(truth * k + guess, minlength=k * k).view(k, k)
    share = confusion / confusion.sum(dim=1, keepdim=True).clamp(min=1)  # each row sums to 1
    strict = share.diag()[confusion.sum(dim=1) > 0].mean()
    log(f"\ntest: {len(languages)} names | top-1 accuracy {top1:.3f} | balanced accuracy "
        f"{sum(recall.values()) / len(recall):.3f} | per (name, language) pair: top-1 "
        f"{(guess == truth).float().mean():.3f}, balanced {strict:.3f}\n")
    log(f"{'language':<12} {'names':>5}  recall")
    for i, r in recall.items():
        log(f"{labels[i]:<12} {len(members[i]):>5}  {r:.2f} " + "#" * round(20 * r))
    shades = " .:-=+*#%@"  # darker = a larger share of that row's names got that guess
    log("\nconfusion matrix (rows: true language, columns: guess, darker = more)")
    log(" " * 12 + "".join(f"{label[:3]:>4}" for label in labels))
    for i in range(k):
        log(f"{labels[i]:<12} " + " ".join(shades[math.ceil(9 * s)] * 3 for s in share[i].tolist()))


# -----------------------------------------------------------------------------
# Command line

def pick_device(name):
    """auto picks CUDA, then Apple's MPS, then the CPU; an explicit choice must exist."""
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if name == "auto":
        name = next((d for d in ("cuda", "mps") if available[d]), "cpu")
    elif name != "cpu" and not available[name]:
        sys.exit(f"error: --device {name} is not available here; use --device cpu or auto")
    return torch.device(name)


def build_model(config, chars, labels, device):
    model = NameClassifier(len(chars) + 2, len(labels), **config).to(device)
    # The alphabet comes from the training names only (a held-out name may hold a letter the
    # model never learned: it becomes UNK). Not part of the state_dict: rebuilt from `chars`.
    model.stoi = {c: i + 2 for i, c in enumerate(chars)}
    return model


def load_checkpoint(path, device):
    if not path.is_file():
        sys.exit(f"error: no checkpoint at {path}; train one first: python {HERE.name}/train.py")
    try:  # weights_only=True: only tensors and plain containers, a foreign file runs no code
        state = torch.load(path, map_location=device, weights_only=True)
        kind = state.get("kind")
        if kind == "char-rnn-classification":
            model = build_model(state["config"], state["chars"], state["labels"], device)
            model.load_state_dict(state["model"])
            return model, state["labels"]
    except Exception as e:  # not a torch file, not a dict, missing keys, other sizes...
        sys.exit(f"error: {path} is not a usable checkpoint ({type(e).__name__}); retrain it")
    sys.exit(f"error: {path} is a {kind or 'foreign'} checkpoint, not char-rnn-classification")


def clean(raw, stoi):
    """Transliterate a user's name to the model's alphabet; return (name, problem or None)."""
    name = unidecode(raw[:4 * MAX_CHARS]).strip()  # "Пушкин" -> "Pushkin", "山田" -> "Shan Tian"
    unknown = sorted({c for c in name if c not in stoi})
    name = "".join(c for c in name if c in stoi)[:MAX_CHARS]
    if not any(c.isalpha() for c in name):
        return None, f"{raw[:40]!r} has no letters the model knows; give a name like 'Hinton'"
    if unknown:
        log(f"note: ignored characters the model never saw in {raw[:40]!r}: {''.join(unknown)!r}")
    return name, None


def predict_command(model, labels, raw_names, device, blank_ok=False):
    """Print one tab-separated line per name, in input order; return how many failed. A name
    that cannot be read gets an error on stderr and is echoed alone on stdout, so output lines
    still match input lines (a blank input line gives a blank output line, when blank_ok)."""
    cleaned = [(None, None) if blank_ok and not raw.strip() else clean(raw, model.stoi)
               for raw in raw_names]
    good = [name for name, _ in cleaned if name]
    probs = iter(predict(model, good, device) if good else [])
    for raw, (name, problem) in zip(raw_names, cleaned):
        out = [raw.replace("\t", " ")]  # a tab inside a name would add a column
        if problem:
            log(f"error: {problem}")
        elif name:
            top_p, top_i = next(probs).topk(min(3, len(labels)))
            out += [f"{labels[i]} {p:.2f}" for p, i in zip(top_p, top_i.tolist())]
        print("\t".join(out))
    return sum(problem is not None for _, problem in cleaned)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument
    add("--predict", nargs="+", metavar="NAME",
        help="classify names with the saved model ('-': one per line from stdin)")
    add("--data-dir", type=Path, default=HERE.parent / "data",
        help="folder holding names/<language>.txt (downloaded there if missing)")
    add("--checkpoint", type=Path, default=HERE / "model.pt",
        help="where the best model is saved, and loaded from by --predict")
    add("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
        help="where to run: auto picks cuda, then mps, then cpu")
    add("--seed", type=int, default=0, help="seed for the split, the init and the batch order")
    add("--epochs", type=int, default=10, help="passes over the training names")
    add("--max-steps", type=int, default=0, help="stop after N steps in all (0: no limit)")
    add("--batch-size", type=int, default=128, help="names per optimisation step")
    add("--lr", type=float, default=3e-3, help="peak learning rate of AdamW (cosine decay)")
    add("--embed-size", type=int, default=64, help="size of each character's vector")
    add("--hidden-size", type=int, default=256, help="GRU state size per direction")
    add("--dropout", type=float, default=0.3, help="dropout on embeddings and features")
    add("--log-every", type=int, default=50, help="print a progress line every N steps")
    args = p.parse_args(argv)
    sizes = (args.epochs, args.batch_size, args.log_every, args.embed_size, args.hidden_size)
    if min(sizes) < 1 or args.max_steps < 0 or not 0 < args.lr < math.inf \
            or not 0 <= args.dropout < 1 or not args.checkpoint.name:  # (not 0 < nan: rejected)
        sys.exit("error: sizes, --epochs and --log-every must be >= 1, --max-steps >= 0, "
                 "--lr > 0, 0 <= --dropout < 1, and --checkpoint a file name")
    device = pick_device(args.device)
    torch.manual_seed(args.seed)

    if args.predict:
        model, labels = load_checkpoint(args.checkpoint, device)
        for stream in (sys.stdin, sys.stdout):  # odd bytes in a name must not end the run
            getattr(stream, "reconfigure", lambda **kw: None)(errors="replace")
        from_stdin = args.predict == ["-"]
        names = sys.stdin.read().splitlines() if from_stdin else args.predict
        sys.exit(1 if predict_command(model, labels, names, device, blank_ok=from_stdin) else 0)

    labels, examples = read_names(args.data_dir)
    train_set, val_set, test_set = split_by_name(examples, args.seed)
    chars = sorted(set("".join(name for name, _ in train_set)))
    log(f"{len(examples)} (name, language) pairs, {len(labels)} languages, {len(chars)} characters"
        f" | train {len(train_set)}, val {len(val_set)}, test {len(test_set)} | device {device}")
    config = dict(embed_size=args.embed_size, hidden_size=args.hidden_size, dropout=args.dropout)
    model = build_model(config, chars, labels, device)
    saved = []  # so that Ctrl-C never claims a model this run did not write
    def save():
        save_checkpoint(args.checkpoint, model, config, chars, labels)
        saved.append(True)
    try:
        train(args, model, train_set, val_set, device, save)
    except KeyboardInterrupt:
        log(f"\ninterrupted: the best model so far is at {args.checkpoint}" if saved
            else "\ninterrupted before the first epoch ended: nothing was saved")
        sys.exit(130)
    model, labels = load_checkpoint(args.checkpoint, device)  # the best epoch, not the last
    report(model, test_set, labels, device)
    log(f"\nsaved {args.checkpoint}; a few examples:")
    predict_command(model, labels, EXAMPLES, device)


if __name__ == "__main__":
    main()
