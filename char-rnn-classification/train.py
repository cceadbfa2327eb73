"""
Classify a surname by its language of origin, one character at a time.

A character-level recurrent network reads a name ("Hinton", "Nguyen", "Dostoevsky") and
predicts which of 18 languages it comes from. This is the first "practical PyTorch" tutorial,
rewritten for PyTorch 2.x: names go through the network in padded, packed batches instead of
one letter at a time, the split is honest (no name is both trained on and tested on), and the
report says how well it does on the rare languages, not only on Russian.

Run it (from anywhere; the data is downloaded into data/ on first use):
    python char-rnn-classification/train.py                        # train, test, save model.pt
    python char-rnn-classification/train.py --predict Hinton Satoshi
    cut -f1 my_names.txt | python char-rnn-classification/train.py --predict -

Training prints progress lines to stderr, then a test report: top-1 accuracy, balanced
accuracy (mean recall over languages), recall per language and a confusion matrix drawn as
text. Predictions go to stdout, one line per name, tab-separated, most likely first:
    Hinton<TAB>Scottish 0.62<TAB>English 0.21<TAB>Irish 0.05
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
from collections import Counter
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
    data_dir.mkdir(parents=True, exist_ok=True)
    log(f"downloading {DATA_URL} into {data_dir} ...")
    try:
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
    except (OSError, zipfile.BadZipFile) as e:
        sys.exit(f"error: could not download {DATA_URL} ({e}); fetch it by hand and unzip its "
                 f"data/ folder into {data_dir}, or pass --data-dir")


def read_names(data_dir):
    """Return (labels, examples): labels sorted by file name, examples as (name, label id)."""
    names_dir = data_dir / "names"
    if not names_dir.exists():
        download_data(data_dir)
    files = sorted(names_dir.glob("*.txt"))  # sorted, so label ids are stable across runs
    if not files:
        sys.exit(f"error: no <language>.txt files in {names_dir}; point --data-dir at a folder "
                 "holding names/<language>.txt")
    labels = [f.stem for f in files]
    examples = set()  # a set: Arabic.txt repeats ~100 names twenty times over
    for label_id, f in enumerate(files):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            name = unidecode(line).strip()  # "Schrödinger" -> "Schrodinger": ASCII only
            if name:
                examples.add((name, label_id))
    if len({label for _, label in examples}) < 2:
        sys.exit(f"error: {names_dir} needs at least two non-empty <language>.txt files")
    return labels, sorted(examples)


def split_by_name(examples, seed, fractions=(0.8, 0.1)):
    """Split into train/val/test by *distinct name*.

    Some names are filed under several languages (e.g. "Abel" is French, German, ...). A
    split over (name, language) pairs would put "Abel" in training under one language and
    test it under another, so the test would measure memory, not generalisation. Here every
    string lands on exactly one side, with all of its labels."""
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

    The old tutorial fed a one-hot (time, 1, 57) tensor per name; an nn.Embedding lookup of
    integer ids does the same job without materialising the one-hot vectors."""
    lengths = torch.tensor([len(n) for n in names])
    x = torch.full((len(names), int(lengths.max())), PAD, dtype=torch.long)
    for i, name in enumerate(names):
        x[i, :len(name)] = torch.tensor([stoi.get(c, UNK) for c in name])
    return x.to(device), lengths


# -----------------------------------------------------------------------------
# Model

class NameClassifier(nn.Module):
    """Embedding -> bidirectional GRU -> linear layer over the two final hidden states.

    The 2017 tutorial wrote its own RNN cell (a linear layer over [input, hidden]) and looped
    over letters in Python. nn.GRU runs the whole batch in one fused call, and its gates let
    it keep "this name started with Mc" in memory across a long name. Reading the name in
    both directions helps because endings (-ov, -ski, -ez) carry most of the signal."""

    def __init__(self, vocab_size, num_labels, embed_size=64, hidden_size=256, dropout=0.3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD)
        self.rnn = nn.GRU(embed_size, hidden_size, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, num_labels)

    def forward(self, x, lengths):
        emb = self.drop(self.embed(x))  # (batch, time, embed)
        # Packing tells the GRU where each name really ends, so padding never reaches the
        # final hidden state (the old tutorial had no batches, hence no padding to worry about).
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)                     # h: (2 directions, batch, hidden)
        h = torch.cat([h[0], h[1]], dim=1)          # (batch, 2 * hidden)
        return self.head(self.drop(h))              # (batch, labels): unnormalised logits


# -----------------------------------------------------------------------------
# Training

def save_checkpoint(path, model, config, chars, labels):
    """Write to a temporary file, then rename: Ctrl-C mid-write never leaves a broken file."""
    state = {"kind": "char-rnn-classification", "config": config, "model": model.state_dict(),
             "chars": chars, "labels": labels}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(args, model, train_set, val_set, device, save):
    """AdamW with a cosine learning-rate decay; keep the weights with the best val accuracy."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train_set) / args.batch_size)
    total = args.epochs * steps_per_epoch
    if args.max_steps:
        total = min(total, args.max_steps)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    # CrossEntropyLoss = log_softmax + NLLLoss, the pair the old tutorial wrote out by hand.
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    best, step, start, running = -1.0, 0, time.time(), []
    for epoch in range(1, math.ceil(total / steps_per_epoch) + 1):
        model.train()
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
                log(f"epoch {epoch} | step {step}/{total} | loss {sum(running) / len(running):.4f}"
                    f" | {elapsed:.0f}s elapsed, ETA {elapsed / step * (total - step):.0f}s")
                running = []
            if step == total:
                break
        acc = accuracy(model, val_set, device)
        log(f"epoch {epoch} done | val accuracy {acc:.3f}{' (best, saved)' if acc > best else ''}")
        if acc > best:
            best = acc
            save()
    return best


# -----------------------------------------------------------------------------
# Evaluation

@torch.inference_mode()  # no autograd bookkeeping: the 2.x replacement for volatile=True
def predict(model, names, device, batch_size=512):
    """Return a (len(names), labels) tensor of probabilities."""
    model.eval()
    probs = []
    for i in range(0, len(names), batch_size):
        x, lengths = encode(names[i:i + batch_size], model.stoi, device)
        probs.append(model(x, lengths).softmax(dim=1).cpu())
    return torch.cat(probs)


def accuracy(model, dataset, device):
    guesses = predict(model, [name for name, _ in dataset], device).argmax(dim=1)
    return (guesses == torch.tensor([label for _, label in dataset])).float().mean().item()


def report(model, test_set, labels, device):
    """Top-1 and balanced accuracy, recall per language, and a text confusion matrix."""
    truth = torch.tensor([label for _, label in test_set])
    guess = predict(model, [name for name, _ in test_set], device).argmax(dim=1)
    k = len(labels)
    confusion = torch.bincount(truth * k + guess, minlength=k * k).view(k, k)  # (true, guessed)
    recall = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
    present = confusion.sum(dim=1) > 0
    # Russian is ~47% of the names: a model that always says "Russian" scores 0.47 top-1.
    # Balanced accuracy (mean recall over languages) gives every language the same weight.
    log(f"\ntest: {len(test_set)} names | top-1 accuracy {(guess == truth).float().mean():.3f}"
        f" | balanced accuracy {recall[present].mean():.3f}\n")
    log(f"{'language':<12} {'names':>5}  recall")
    for i in range(k):
        if present[i]:
            bar = "#" * round(20 * recall[i].item())
            log(f"{labels[i]:<12} {confusion[i].sum():>5}  {recall[i]:.2f} {bar}")
    # Each row is a true language, each column a guess; shading = share of that row's names.
    shades = " .:-=+*#%@"
    share = confusion / confusion.sum(dim=1, keepdim=True).clamp(min=1)
    log("\nconfusion matrix (rows: true language, columns: guess, darker = more)")
    log(" " * 13 + " ".join(label[:2] for label in labels))
    for i in range(k):
        cells = [shades[min(9, math.ceil(9 * s))] * 2 for s in share[i].tolist()]
        log(f"{labels[i]:<12} " + " ".join(cells))


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
    model.stoi = {c: i + 2 for i, c in enumerate(chars)}  # ids 0 and 1 are PAD and UNK
    return model


def load_checkpoint(path, device):
    if not path.exists():
        sys.exit(f"error: no checkpoint at {path}; train one first: python {HERE.name}/train.py")
    try:
        state = torch.load(path, map_location=device, weights_only=True)  # never runs code
    except Exception as e:
        sys.exit(f"error: {path} is not a readable checkpoint ({type(e).__name__}); retrain it")
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind != "char-rnn-classification":
        sys.exit(f"error: {path} is a checkpoint of {kind or 'something else'}, "
                 "not of char-rnn-classification")
    model = build_model(state["config"], state["chars"], state["labels"], device)
    model.load_state_dict(state["model"])
    return model, state["labels"]


def clean(raw, stoi):
    """Transliterate a user's name to the model's alphabet; return (name, problem or None)."""
    name = unidecode(raw).strip()  # "Пушкин" -> "Pushkin", "山田" -> "Shan Tian"
    unknown = sorted({c for c in name if c not in stoi})
    name = "".join(c for c in name if c in stoi)[:MAX_CHARS]
    if not any(c.isalpha() for c in name):
        return None, f"{raw[:40]!r} has no letters the model knows; give a name like 'Hinton'"
    if unknown:
        log(f"note: ignored characters the model never saw in {raw[:40]!r}: {''.join(unknown)!r}")
    return name, None


def predict_command(model, labels, raw_names, device):
    """Print one tab-separated line per name; a name that cannot be read gets an error line
    on stderr and an output line with the name alone, so output lines still match input."""
    cleaned = [clean(raw, model.stoi) for raw in raw_names]
    good = [name for name, problem in cleaned if problem is None]
    probs = iter(predict(model, good, device) if good else [])
    for raw, (_, problem) in zip(raw_names, cleaned):
        if problem:
            log(f"error: {problem}")
            print(raw)
            continue
        top_p, top_i = next(probs).topk(min(3, len(labels)))
        print("\t".join([raw] + [f"{labels[i]} {p:.2f}" for p, i in zip(top_p, top_i.tolist())]))
    if len(good) < len(raw_names):
        sys.exit(1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--predict", nargs="+", metavar="NAME",
                   help="classify names with the saved model ('-': one per line from stdin)")
    p.add_argument("--data-dir", type=Path, default=HERE.parent / "data",
                   help="folder holding names/<language>.txt (downloaded there if missing)")
    p.add_argument("--checkpoint", type=Path, default=HERE / "model.pt",
                   help="where the best model is saved, and loaded from by --predict")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="where to run: auto picks cuda, then mps, then cpu")
    p.add_argument("--seed", type=int, default=0, help="seed for split, init and batch order")
    p.add_argument("--epochs", type=int, default=12, help="passes over the training names")
    p.add_argument("--max-steps", type=int, default=0, help="stop after N steps (0: no limit)")
    p.add_argument("--batch-size", type=int, default=64, help="names per optimisation step")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of AdamW")
    p.add_argument("--embed-size", type=int, default=64, help="size of each character's vector")
    p.add_argument("--hidden-size", type=int, default=256, help="GRU state size per direction")
    p.add_argument("--dropout", type=float, default=0.3, help="dropout on embeddings and features")
    p.add_argument("--log-every", type=int, default=50, help="print a progress line every N steps")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    torch.manual_seed(args.seed)

    if args.predict:
        model, labels = load_checkpoint(args.checkpoint, device)
        names = sys.stdin.read().splitlines() if args.predict == ["-"] else args.predict
        return predict_command(model, labels, names, device)

    labels, examples = read_names(args.data_dir)
    train_set, val_set, test_set = split_by_name(examples, args.seed)
    chars = sorted(set("".join(name for name, _ in train_set)))
    counts = Counter(labels[label] for _, label in train_set)
    log(f"{len(examples)} (name, language) pairs, {len(labels)} languages, {len(chars)} characters"
        f" | train {len(train_set)}, val {len(val_set)}, test {len(test_set)} | device {device}")
    log("most common in training: " + ", ".join(f"{k} {v}" for k, v in counts.most_common(3)))
    config = dict(embed_size=args.embed_size, hidden_size=args.hidden_size, dropout=args.dropout)
    model = build_model(config, chars, labels, device)
    try:
        train(args, model, train_set, val_set, device,
              save=lambda: save_checkpoint(args.checkpoint, model, config, chars, labels))
    except KeyboardInterrupt:
        log(f"\ninterrupted: the best model so far is kept at {args.checkpoint}")
        sys.exit(130)
    model, labels = load_checkpoint(args.checkpoint, device)  # the best epoch, not the last
    if test_set:
        report(model, test_set, labels, device)
    log(f"\nsaved {args.checkpoint}; a few examples:")
    predict_command(model, labels, EXAMPLES, device)


if __name__ == "__main__":
    main()
