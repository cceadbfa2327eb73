"""
Classify a surname by its language of origin, one character at a time.

A character-level recurrent network reads a name ("Hinton", "Nguyen") and predicts
which of 18 languages it comes from. Russian is over half the names, Portuguese under
1%: the loss is logit-adjusted (Menon et al. 2021), and the report shows what the
prior correction buys the rare languages and what it costs.

Run it from the repository root (the data is downloaded into data/ on first use):
    python char-rnn-classification/train.py              # train, test, save model.pt
    python char-rnn-classification/train.py --predict Hinton Satoshi
    cut -f1 names.txt | python char-rnn-classification/train.py --predict -

Progress goes to stderr, then a test report: top-1 and balanced accuracy with and
without the prior correction, recall per language. Predictions go to stdout, one
tab-separated line per name, most likely first: Hinton, English 0.93, Scottish 0.06...
Since the 2017 tutorial: packed batches, not one letter at a time; a split by
distinct name; a report that counts every language; the logit-adjusted loss; averaged weights.
"""

import argparse
import math
import os
import random
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence
from unidecode import unidecode

DATA_URL = os.environ.get("PRACTICAL_PYTORCH_DATA_URL",
                          "https://download.pytorch.org/tutorial/data.zip")
HERE = Path(__file__).resolve().parent
KIND = "char-rnn-classification"  # in every checkpoint: a foreign one is refused
PAD = 0              # character id 0: padding after a short name
UNK = 1              # character id 1: a character no training name showed
MAX_CHARS = 64       # longer input is cut: the longest surname in the data has 20
ALPHA = 0.5          # share of the log prior added back when guessing: see report()
WEIGHT_DECAY = 0.01  # AdamW's pull of every weight towards zero, times the lr
GRAD_CLIP = 1.0      # clip the gradient norm here: one odd batch cannot blow up
AVERAGE = 5          # last epochs whose weights are averaged: less noisy than any one

def log(*parts):
    """Progress, notes and errors go to stderr, so stdout carries only the answers."""
    print(*parts, file=sys.stderr, flush=True)

# --- Data --------------------------------------------------------------------
def download(data_dir):
    """Move the tutorial archive's whole data/ folder into data_dir: one download serves all
    three scripts. Unpacked in a temporary folder first, it never leaves half a data set."""
    if data_dir.exists() and not data_dir.is_dir():
        sys.exit(f"error: --data-dir {data_dir} is a file; pass the folder that holds the data")
    log(f"downloading {DATA_URL} into {data_dir}")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
            archive = Path(tmp) / "data.zip"
            with urllib.request.urlopen(DATA_URL, timeout=60) as response:
                archive.write_bytes(response.read())
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
            for item in (Path(tmp) / "data").iterdir():
                if not (data_dir / item.name).exists():
                    os.replace(item, data_dir / item.name)
    except Exception as e:  # no network, an HTTP error, a broken archive, a full disk...
        sys.exit(f"error: could not download {DATA_URL} ({type(e).__name__}); put its "
                 f"data/ files in {data_dir} by hand, or pass --data-dir")

def read_names(data_dir):
    """Return (labels, examples): labels sorted by file name, examples as (name, label id)."""
    names_dir = data_dir / "names"
    if not names_dir.exists():
        download(data_dir)
    files = sorted(names_dir.glob("*.txt"))  # sorted, so label ids are stable across runs
    if not files:
        sys.exit(f"error: no <language>.txt files in {names_dir}; check --data-dir")
    examples = set()  # a set: Arabic.txt repeats ~100 names twenty times over
    for label_id, f in enumerate(files):
        try:
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as e:
            sys.exit(f"error: cannot read {f} ({e.strerror})")
        # unidecode maps every script to ASCII ("Schrödinger" -> "Schrodinger"): a
        # small alphabet. Filter *after* it: a lone BOM or emoji becomes "".
        names = [unidecode(line).strip() for line in lines]
        examples.update((name, label_id) for name in names if name)
    if len({label for _, label in examples}) < 2 or len({n for n, _ in examples}) < 20:
        sys.exit(f"error: {names_dir} needs two or more <language>.txt files and 20+ names")
    return [f.stem for f in files], sorted(examples)

def split_by_name(examples, seed):
    """Split into train/val/test by *distinct name*. Some names are filed under
    several languages ("Abel" is French and German). A split over (name, language)
    pairs would train on "Abel" under one and test it under another: the test would
    measure memory, not generalisation. Each string lands on one side, labels and all."""
    names = sorted({name for name, _ in examples})
    random.Random(seed).shuffle(names)
    n_train = int(0.8 * len(names))
    n_val = int(0.9 * len(names))
    sides = [set(names[:n_train]), set(names[n_train:n_val]), set(names[n_val:])]
    return [[example for example in examples if example[0] in side] for side in sides]

def encode(names, stoi, device):
    """Names -> a padded (batch, time) tensor of character ids, and their lengths. The old
    tutorial fed one-hot (time, 1, 57) tensors; an nn.Embedding lookup of ids does that job."""
    lengths = torch.tensor([len(n) for n in names])  # stays on the CPU: packing requires it
    x = torch.full((len(names), int(lengths.max())), PAD, dtype=torch.long)
    for i, name in enumerate(names):
        x[i, :len(name)] = torch.tensor([stoi.get(c, UNK) for c in name])
    return x.to(device), lengths

# --- Model -------------------------------------------------------------------
class NameClassifier(nn.Module):
    """Embedding -> bidirectional GRU -> linear layer over the two final states. The 2017
    tutorial looped over letters in Python with its own RNN cell; nn.GRU runs the batch in one
    fused call, and its gates carry "started with Mc" across a name. The forward pass ends on
    the ending (-ov, -ski), the backward one on the start (Mc-, O', Van): both ends are fresh."""
    def __init__(self, chars, labels, embed_size=64, hidden_size=224, dropout=0.3):
        super().__init__()
        self.config = dict(chars=chars, labels=labels, embed_size=embed_size,
                           hidden_size=hidden_size, dropout=dropout)
        self.stoi = {c: i + 2 for i, c in enumerate(chars)}  # character -> id; 0, 1: PAD, UNK
        self.labels = labels
        num_labels = len(labels)
        self.embed = nn.Embedding(len(chars) + 2, embed_size, padding_idx=PAD)  # PAD's vector: 0
        self.rnn = nn.GRU(embed_size, hidden_size, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, num_labels)
        self.register_buffer("log_prior", torch.zeros(num_labels))  # saved, never trained
    def forward(self, x, lengths):
        emb = self.drop(self.embed(x))  # (B, T, embed): names, letters of the longest
        # Packing tells the GRU where each name ends: padding never reaches the final state.
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)                     # h: (2 directions, B, hidden)
        h = torch.cat([h[0], h[1]], dim=1)          # forward and backward: (B, 2 * hidden)
        # Logits: a raw score per language; softmax makes them probabilities.
        return self.head(self.drop(h))              # (B, labels)

# --- Training ----------------------------------------------------------------
def train(args, model, train_set, val_set, device, save):
    """Train with the logit-adjusted loss; save the best epoch, then the last epochs' mean."""
    averaged = torch.optim.swa_utils.AveragedModel(model)  # SWA, Izmailov et al. 2018
    # AdamW: Adam's per-weight step sizes, with weight decay applied to the weights. fused=True:
    # one kernel updates all weights, 6 times faster on a CPU than a loop over the tensors.
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=WEIGHT_DECAY, fused=True)
    steps_per_epoch = math.ceil(len(train_set) / args.batch_size)
    total_steps = min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
    epochs = math.ceil(total_steps / steps_per_epoch)
    # Cosine schedule: the lr falls from peak to 0 along half a cosine; the end settles.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    batch_order = torch.Generator().manual_seed(args.seed)
    best = math.inf
    step = 0
    start = time.time()
    running = []
    for epoch in range(1, epochs + 1):
        model.train()  # dropout on; predict() switches it off for validation
        order = torch.randperm(len(train_set), generator=batch_order).tolist()
        for i in range(0, len(order), args.batch_size):
            # get the batch
            batch = [train_set[j] for j in order[i:i + args.batch_size]]
            x, lengths = encode([name for name, _ in batch], model.stoi, device)
            y = torch.tensor([label for _, label in batch], device=device)
            # forward and loss. Logit adjustment (Menon et al. 2021): the loss sees logits + log
            # prior, so the prior says "Russian is common", the logits what the letters say (their
            # softmax treats all languages alike). cross_entropy = log_softmax + NLLLoss.
            loss = F.cross_entropy(model(x, lengths) + model.log_prior, y)
            # update
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            opt.step()
            sched.step()
            step += 1
            # log
            running.append(loss.item())
            if step % args.log_every == 0 or step == total_steps:
                elapsed = time.time() - start
                mean = sum(running) / len(running)
                log(f"epoch {epoch}/{epochs} | step {step}/{total_steps} | loss {mean:.4f} | "
                    f"{elapsed:.0f}s elapsed, ETA {elapsed / step * (total_steps - step):.0f}s")
                running = []
            if step == total_steps:
                break
        # Keep the epoch with the best val loss (the training loss on held-out pairs), not
        # balanced accuracy: 7-11 val names per rare language move recall in steps of 0.1. In
        # the last AVERAGE epochs, save the running mean of their weights every epoch: the mean
        # is SWA's model, and the val loss can drift up there while val top-1 still rises.
        averaging = epoch > epochs - AVERAGE
        if averaging:
            averaged.update_parameters(model)  # the first update copies
        candidate = averaged.module if averaging else model
        val_loss, [(top1, confusion)] = evaluate(candidate, val_set, device)
        log(f"epoch {epoch}/{epochs} done | val loss {val_loss:.4f}, top-1 {top1:.3f}, balanced "
            f"{balanced(confusion):.3f}{' (saved)' if averaging or val_loss < best else ''}")
        if averaging or val_loss < best:
            best = val_loss
            save(candidate)

# --- Evaluation --------------------------------------------------------------
@torch.inference_mode()  # a faster torch.no_grad(), which replaced volatile=True Variables
def predict(model, names, device, batch_size=512):
    """Return the (len(names), labels) logits on the CPU, *without* the log prior."""
    model.eval()
    batches = [names[i:i + batch_size] for i in range(0, len(names), batch_size)]
    return torch.cat([model(*encode(b, model.stoi, device)).cpu() for b in batches])

def evaluate(model, dataset, device, alphas=(ALPHA,)):
    """Guess each distinct name once per alpha (share of the log prior added back); return the
    loss and [(top-1, confusion matrix over pairs)]. Top-1 is per name, right if the guess is *one
    of* its languages: per pair, the one guess for "Abel" (French, German) is right and wrong."""
    names = sorted({name for name, _ in dataset})
    row = {name: i for i, name in enumerate(names)}
    logits = predict(model, names, device)                          # (names, labels)
    rows = torch.tensor([row[name] for name, _ in dataset])         # (pairs,): each pair's name
    truth = torch.tensor([label for _, label in dataset])           # (pairs,)
    loss = F.cross_entropy(logits[rows] + model.log_prior.cpu(), truth).item()
    k = logits.size(1)
    results = []
    for alpha in alphas:
        guess = (logits + alpha * model.log_prior.cpu()).argmax(dim=1)[rows]  # (pairs,)
        hits = zip(dataset, (guess == truth).tolist())  # a name is right if any pair is
        top1 = len({name for (name, _), hit in hits if hit}) / len(names)
        # Row = the true language, column = the guess: bincount gives each cell its own bin.
        results.append((top1, torch.bincount(truth * k + guess, minlength=k * k).view(k, k)))
    return loss, results

def recall(confusion):  # per language: the share of its pairs guessed as it, (labels,)
    return confusion.diag() / confusion.sum(dim=1).clamp(min=1)

def balanced(confusion):  # mean recall over the languages present, as sklearn defines it
    return recall(confusion)[confusion.sum(dim=1) > 0].mean().item()

def report(model, test_set, device):
    """Always answering Russian scores ~0.5 top-1 but 1/18 balanced accuracy, which weighs all
    languages alike. All of the log prior (share 1) guesses by the data's mix: best top-1, rare
    languages lost; none: best balanced accuracy. ALPHA, between, flattens it to prior**ALPHA."""
    results = evaluate(model, test_set, device, alphas=(ALPHA, 1.0, 0.0))[1]
    top1, confusion = results[0]
    other = [f"top-1 {t:.3f}, balanced {balanced(c):.3f}" for t, c in results[1:]]
    log(f"\ntest: {len({n for n, _ in test_set})} names | top-1 accuracy {top1:.3f} | balanced "
        f"accuracy {balanced(confusion):.3f} | prior share {ALPHA} | share 1 (no correction): "
        f"{other[0]} | share 0 (languages equally likely): {other[1]}")
    log(f"\n{'language':<12} {'pairs':>5}  recall at share {ALPHA} (at 1), most common mistake")
    wrong = confusion - torch.diag(confusion.diag())  # (labels, labels): the mistakes only
    for i, (r, plain) in enumerate(zip(recall(confusion).tolist(), recall(results[1][1]).tolist())):
        mistake = model.labels[wrong[i].argmax()] if wrong[i].any() else ""
        log(f"{model.labels[i]:<12} {int(confusion[i].sum()):>5}  {r:.2f} ({plain:.2f}) "
            f"{'#' * round(20 * r):<20} {mistake}")

# --- Checkpoints -------------------------------------------------------------
def check_writable(path):
    """Before training: a bad --checkpoint must fail in seconds, not after the first epoch."""
    if path.is_dir():
        sys.exit(f"error: --checkpoint {path} is a folder; name a file, e.g. {path / 'model.pt'}")
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(b"")
        tmp.unlink()
    except OSError as e:
        sys.exit(f"error: cannot write {path} ({type(e).__name__}); pass another --checkpoint")

def save_checkpoint(path, model):
    """Save {"kind", "config", "model"}, rebuilt on load as Model(**config), to a temporary
    file renamed over `path` in one step: a Ctrl-C never leaves half a checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"kind": KIND, "config": model.config, "model": model.state_dict()}, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save raises RuntimeError for an unwritable path
        sys.exit(f"error: cannot write {path} ({type(e).__name__}); pass another --checkpoint")

def load_checkpoint(path, device):
    if not path.is_file():
        sys.exit(f"error: no checkpoint at {path}; train one first: python {HERE.name}/train.py")
    try:  # weights_only=True: only tensors and plain containers, a foreign file runs no code
        state = torch.load(path, map_location=device, weights_only=True)
        if (kind := state.get("kind")) == KIND:
            model = NameClassifier(**state["config"])
            model.load_state_dict(state["model"])
            return model.to(device)
    except Exception as e:  # not a torch file, not a dict, missing keys, other sizes...
        sys.exit(f"error: {path} is not a usable checkpoint ({type(e).__name__}); retrain it")
    sys.exit(f"error: {path} is a {kind or 'foreign'} checkpoint, not {KIND}")

# --- Command line ------------------------------------------------------------
def pick_device(name):
    """auto: CUDA when present, else the CPU; Apple's MPS only when asked for (untested)."""
    has = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if name == "auto":
        name = "cuda" if has["cuda"] else "cpu"
    if not has[name]:
        sys.exit(f"error: --device {name} is not available here; use --device cpu or auto")
    return torch.device(name)

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

def predict_command(model, raw_names, device, blank_ok=False):
    """Print a tab-separated line per name in input order; return how many failed (echoed alone,
    error on stderr; blank stays blank if blank_ok). Probabilities: softmax(logits + ALPHA * log
    prior), beliefs under the prior flattened to prior**ALPHA; the first is evaluate()'s guess."""
    cleaned = [clean(raw, model.stoi) if raw.strip() or not blank_ok else (None, None)
               for raw in raw_names]
    good = [name for name, _ in cleaned if name]
    probs = iter((predict(model, good, device) + ALPHA * model.log_prior.cpu()).softmax(dim=1)
                 if good else [])
    for raw, (name, problem) in zip(raw_names, cleaned):
        out = [raw.replace("\t", " ")]  # a tab inside a name would add a column
        if problem:
            log(f"error: {problem}")
        elif name:
            top_p, top_i = next(probs).topk(min(3, len(model.labels)))
            out += [f"{model.labels[i]} {p:.2f}" for p, i in zip(top_p, top_i.tolist())]
        print("\t".join(out))
    return sum(problem is not None for _, problem in cleaned)

def in_range(kind, low, high=math.inf):
    """An argparse type: a number of `kind` in [low, high]; nan fails every comparison."""
    def number(text):
        value = kind(text)  # argparse turns a ValueError here into "invalid number value: 'x'"
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not in [{low}, {high}]")
        return value
    return number

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.error = lambda message: p.exit(2, f"error: {message}\n")  # one line, not the usage
    add = p.add_argument
    add("--data-dir", type=Path, default=HERE.parent / "data", help="holds names/<lang>.txt")
    add("--checkpoint", type=Path, default=HERE / "model.pt", help="the model file")
    add("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
        help="auto: cuda if present, else cpu; mps (untested) only if asked")
    add("--seed", type=in_range(int, 0, 2**63 - 1), default=0,
        help="seeds the split, the weights and the batch order")
    add("--epochs", type=in_range(int, 1), default=10, help="passes over the training names")
    add("--max-steps", type=in_range(int, 0), default=0, help="stop after N steps (0: no limit)")
    add("--batch-size", type=in_range(int, 1), default=128, help="names per optimisation step")
    add("--lr", type=in_range(float, 1e-6, 1.0), default=4e-3, help="peak learning rate of AdamW")
    add("--log-every", type=in_range(int, 1), default=50, help="print progress every N steps")
    add("--predict", nargs="+", metavar="NAME", help="classify names ('-': lines of stdin)")
    args = p.parse_args(argv)
    if not args.checkpoint.name:
        p.error("--checkpoint needs a file name")
    device = pick_device(args.device)
    log(f"device {device}")
    torch.manual_seed(args.seed)  # the initial weights and dropout
    saved = []  # what save() wrote: a Ctrl-C may only promise a model this run saved
    def save(model):
        save_checkpoint(args.checkpoint, model)
        saved.append(args.checkpoint)
    try:
        if args.predict:
            model = load_checkpoint(args.checkpoint, device)
            for stream in (sys.stdin, sys.stdout):  # odd bytes must not end the run
                if hasattr(stream, "reconfigure"):
                    stream.reconfigure(errors="replace")
            from_stdin = args.predict == ["-"]
            names = sys.stdin.read().splitlines() if from_stdin else args.predict
            sys.exit(1 if predict_command(model, names, device, blank_ok=from_stdin) else 0)
        check_writable(args.checkpoint)
        labels, examples = read_names(args.data_dir)
        train_set, val_set, test_set = split_by_name(examples, args.seed)
        chars = sorted(set("".join(name for name, _ in train_set)))
        log(f"{len(examples)} (name, language) pairs, {len(labels)} languages, {len(chars)} "
            f"characters | train {len(train_set)}, val {len(val_set)}, test {len(test_set)}")
        model = NameClassifier(chars, labels).to(device)
        counts = torch.bincount(torch.tensor([y for _, y in train_set]), minlength=len(labels))
        model.log_prior.copy_((counts.clamp(min=1) / counts.sum()).log())  # (labels,)
        train(args, model, train_set, val_set, device, save)
        model = load_checkpoint(args.checkpoint, device)  # the saved weights: see train()
        report(model, test_set, device)
        log(f"\nsaved {args.checkpoint}")
    except KeyboardInterrupt:  # Ctrl-C: one line, and exit 130 as shells do
        if args.predict:
            log("interrupted")
        elif saved:
            log(f"interrupted: the model saved last is at {args.checkpoint}")
        else:
            log("interrupted before the first save: no checkpoint was written")
        sys.exit(130)
    except BrokenPipeError:  # the reader left (`| head -1`): end quietly, the Python docs' way
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)

if __name__ == "__main__":
    main()
