"""Classify a surname by its language of origin, one character at a time.

A recurrent network (see NameClassifier) reads a name ("Hinton", "Nguyen") and
guesses which of 18 languages it is from. Russian is over half the names, Portuguese
under 1%: the comment above train() tells how training and guessing allow for that,
with one name worked through. From the repository root:
    python char-rnn-classification/train.py  # train, test (stderr), save model.pt
    python char-rnn-classification/train.py --predict Hinton  # Hinton English 0.87 ...
    cut -f1 names.txt | python char-rnn-classification/train.py --predict -
"""

import argparse
import io
import math
import os
import random
import sys
import tempfile
import time
import urllib.request
import zipfile
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence
from unidecode import unidecode

DATA_URL = os.environ.get("PRACTICAL_PYTORCH_DATA_URL",
                          "https://download.pytorch.org/tutorial/data.zip")
HERE = Path(__file__).resolve().parent
KIND = "char-rnn-classification"  # stored in each checkpoint
PAD = 0              # character id 0: padding after a short name
UNK = 1              # character id 1: any character no training name had
MAX_CHARS = 64       # longer input is cut: the longest surname in the data has 20
ALPHA = 0.5          # lean of guesses toward common languages: 0 none, 1 full (see train)
WEIGHT_DECAY = 0.01  # how hard AdamW pulls every weight toward 0 (see train)
GRAD_CLIP = 1.0      # the largest norm of all the gradients together (see train)
AVERAGE = 5          # the last 5 epochs' weights are averaged into the saved model

def log(*parts):
    """Progress, notes and errors go to stderr, so stdout carries only the answers."""
    print(*parts, file=sys.stderr, flush=True)

# --- Data --------------------------------------------------------------------
def download(data_dir):
    """Unpack the tutorial archive (all three scripts' data) aside, then move its data/ in."""
    log(f"downloading {DATA_URL} into {data_dir} (offline? put its data/ files there by hand)")
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        with urllib.request.urlopen(DATA_URL, timeout=60) as response:
            zipfile.ZipFile(io.BytesIO(response.read())).extractall(tmp)
        for item in (Path(tmp) / "data").iterdir():
            if not (data_dir / item.name).exists():
                os.replace(item, data_dir / item.name)

def read_name(text):
    """A name as the model reads it, in training and --predict alike: ASCII
    ("Пушкин" -> "Pushkin"), trimmed and cut; None if no letter is left."""
    name = unidecode(text[:4 * MAX_CHARS]).strip()[:MAX_CHARS]  # huge lines cut
    if not any(c.isalpha() for c in name):
        return None
    return name

def read_names(data_dir):
    """Return (labels sorted by file name, examples as (name, label id))."""
    names_dir = data_dir / "names"
    if not names_dir.exists():
        download(data_dir)
    files = sorted(names_dir.glob("*.txt"))  # sorted: stable label ids
    examples = set()  # a set: Arabic.txt repeats ~100 names twenty times over
    for label_id, f in enumerate(files):
        lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        names = [read_name(line) for line in lines]  # None: a line with no letter
        examples.update((name, label_id) for name in names if name)
    if len({label for _, label in examples}) < 2 or len({n for n, _ in examples}) < 20:
        sys.exit(f"error: {names_dir} needs two or more <language>.txt files and 20+ names")
    return [f.stem for f in files], sorted(examples)

def split_by_name(examples, seed):
    """Split into train/val/test by *distinct name*. "Abel" is French and German: a
    split over (name, language) pairs could train on "Abel" under one and test it
    under the other, and the test would measure memory, not generalisation. Each
    string lands on one side, labels and all."""
    names = sorted({name for name, _ in examples})
    random.Random(seed).shuffle(names)
    n_train = int(0.8 * len(names))
    n_val = int(0.9 * len(names))
    sides = [set(names[:n_train]), set(names[n_train:n_val]), set(names[n_val:])]
    return [[example for example in examples if example[0] in side] for side in sides]

def encode(names, stoi, device):
    """["Li", "Abe"] -> ids [[L, i, PAD], [A, b, e]], and the lengths [2, 3] (CPU)."""
    # A character no training name had reads as UNK, in the test split and in
    # --predict alike, so a name is always scored one way. UNK keeps the character's
    # place (dropping it would read another, shorter name); its embedding row is
    # zeros: a step, but no letter.
    lengths = torch.tensor([len(n) for n in names])
    x = torch.full((len(names), int(lengths.max())), PAD, dtype=torch.long)
    for i, name in enumerate(names):
        x[i, :len(name)] = torch.tensor([stoi.get(c, UNK) for c in name])
    return x.to(device), lengths  # lengths on the CPU: packing wants them there

# --- Model -------------------------------------------------------------------
class NameClassifier(nn.Module):
    """Embedding -> bidirectional GRU -> linear layer -> logits. A GRU reads a name letter by
    letter into a state of hidden_size numbers: each letter's vector and the old state make the
    new one, gates choosing how much of the old to keep, so the last state sums up the name; a
    second GRU reads the name backwards. Logits are one raw score per language, any real number:
    softmax(z)_i = e^z_i / sum_j e^z_j turns them into probabilities, so only their differences
    matter. forward() returns them without the log prior (see above train())."""
    def __init__(self, chars, labels, label_counts, embed_size=64, hidden_size=224, dropout=0.3):
        super().__init__()
        self.config = dict(chars=chars, labels=labels, label_counts=label_counts,
                           embed_size=embed_size, hidden_size=hidden_size, dropout=dropout)
        self.stoi = {c: i + 2 for i, c in enumerate(chars)}  # 0, 1: PAD, UNK
        self.labels = labels
        # The log prior (see "Logit adjustment"): a buffer, saved with the weights, never trained.
        counts = torch.tensor(label_counts).clamp(min=1)  # (L,); no log(0)
        self.register_buffer("log_prior", (counts / counts.sum()).log())
        # The embedding replaces one-hot input. Letter i's one-hot vector is all 0s but a 1 at
        # place i; times a matrix, it picks out row i. The lookup takes row i without building
        # the vector: cheaper, and one learned row of embed_size numbers per letter feeds all the
        # GRU's gates in both directions; letters that behave alike can learn alike rows.
        self.embed = nn.Embedding(len(chars) + 2, embed_size, padding_idx=PAD)  # PAD row: 0
        nn.init.zeros_(self.embed.weight[UNK])  # UNK never trains: 0s, not noise
        self.rnn = nn.GRU(embed_size, hidden_size, batch_first=True, bidirectional=True)
        # Dropout (training only) zeroes each number of the letter vectors and final states with
        # chance `dropout` and scales the rest by 1/(1 - dropout): none can be relied on alone.
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, len(labels))

    def forward(self, x, lengths):
        # B names, T letters in the longest, E = embed_size, H = hidden_size, L labels
        emb = self.drop(self.embed(x))  # (B, T, E)
        # Packing tells the GRU where each name ends. Without it a short name's forward state
        # would go on reading PAD after its last letter and its backward one would start in PAD,
        # so a name's guess would change with the longest name in its batch.
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)  # (2, B, H): the final state of each direction
        # h[-2] is the forward GRU's state after the last letter (it read the ending, -ov, last)
        # and h[-1] the backward GRU's state after the first letter (it read the start, Mc-, last).
        h = torch.cat([h[-2], h[-1]], dim=1)  # (B, 2H)
        return self.head(self.drop(h))  # (B, L)

# --- Training ----------------------------------------------------------------
# Logit adjustment: training tells the network how common each language is; guessing keeps a part.
# Two measures judge a guess (see Evaluation): top-1, the share of names guessed right, and
# balanced accuracy, the mean over languages of the share of each language's names guessed right.
# 1. The prior: each language's share of the training pairs, Russian's about 0.5, Portuguese's
#    under 0.01. Its log, model.log_prior, is about -0.7 and -5.5: Russian leads by 4.8.
# 2. Training adds the log prior to the logits before the loss. softmax(z + log p) is in
#    proportion to p * e^z: the prior already multiplies in how common each language is, so the
#    logits z need not learn it and carry only what the letters tell (Menon et al. 2021).
# 3. Deciding, a share ALPHA of the log prior is added back: argmax(logits + ALPHA * log prior).
#    Share 1 guesses by the data's mix as a plain classifier does; share 0 as if all languages
#    were equally common. Were softmax(logits + log prior) the true odds, share 1 would give the
#    best top-1 at the cost of rare languages, share 0 the best balanced accuracy at the cost of
#    common ones; the test report shows this model. ALPHA = 0.5 decides as if each share were its
#    square root: Russian leads by 2.4. --predict prints softmax of the same sum (likeliest()).
# 4. One test name, "Gaskell" (English), through the default model (seed 0): the sum
#    logit + share * log prior for its three closest languages.
#      language   logit   log prior   share 0   share 0.5   share 1
#      Scottish    3.07     -5.21       3.07      0.47       -2.14
#      English     2.86     -1.60       2.86      2.06        1.26
#      Russian     2.08     -0.65       2.08      1.75        1.43
#    Share 0 guesses Scottish, share 1 Russian, and the default, share 0.5, English.
def train(args, model, train_set, val_set, device, save):
    averaged = torch.optim.swa_utils.AveragedModel(model)  # a mean of weights
    # AdamW: Adam sizes each weight's step by its recent gradients, so a steady push moves it
    # at full rate, however small. Weight decay, apart from that sizing, also multiplies every
    # weight (embeddings and biases too) by 1 - lr * WEIGHT_DECAY a step: a light pull toward 0,
    # about 2% in all over a default run, which keeps weights that no gradient holds up small.
    # fused=True: the same update in fewer, larger operations, for speed only.
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=WEIGHT_DECAY, fused=True)
    steps_per_epoch = math.ceil(len(train_set) / args.batch_size)
    total_steps = min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
    epochs = math.ceil(total_steps / steps_per_epoch)
    # The learning rate falls to 0 along a half cosine: big steps early, fine ones at the end.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    batch_order = torch.Generator().manual_seed(args.seed)
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
            # forward and loss: -log softmax(logits + log prior)[y], the logit-adjusted loss
            loss = F.cross_entropy(model(x, lengths) + model.log_prior, y)
            # backward and update
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # clipping: if all the gradients together, as one long vector, have a norm over
            # GRAD_CLIP, all shrink by one factor. A recurrent network's gradients can spike, and
            # one spike would inflate Adam's mean of squared gradients and shrink later steps.
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
        # Saved every epoch: the model, then in the last AVERAGE epochs the running mean of their
        # weights (stochastic weight averaging). Over epochs 6-10 of a default run the cosine
        # takes the rate from half its peak to 0: the weights still move, less each epoch, and
        # their mean smooths the noise the last batches leave in any one epoch's weights (the
        # README measures it). The validation figures watch the run and pick nothing: the epoch
        # that scores best on the validation names is partly luck.
        first = max(1, epochs - AVERAGE + 1)  # the first averaged epoch
        averaging = epoch >= first
        if averaging:
            averaged.update_parameters(model)  # the first update copies the weights
        candidate = averaged.module if averaging else model
        val_loss, [(top1, confusion)] = evaluate(candidate, val_set, device)
        if not math.isfinite(val_loss):  # diverged: no later epoch can recover
            sys.exit(f"error: the loss became {val_loss}; try a lower --lr")
        weights = f"the mean of epochs {first}-{epoch}" if epoch > first else f"epoch {epoch}"
        log(f"epoch {epoch}/{epochs} done | val ({weights}): loss {val_loss:.4f}, "
            f"top-1 {top1:.3f}, balanced {balanced(confusion):.3f}")
        save(candidate)

# --- Evaluation --------------------------------------------------------------
@torch.inference_mode()  # no autograd graph is recorded: faster, and less memory
def predict(model, names, device, batch_size=512):
    """Return the (len(names), labels) logits on the CPU, *without* the log prior."""
    model.eval()  # dropout off
    batches = [names[i:i + batch_size] for i in range(0, len(names), batch_size)]
    return torch.cat([model(*encode(b, model.stoi, device)).cpu() for b in batches])

def likeliest(model, names, device, k=3):
    """{name: its k likeliest languages as "English 0.87", best first}, each distinct name scored
    once; a None (no letter to read) is left out. These are the numbers --predict prints,
    softmax(logits + ALPHA * log prior): the model's beliefs under the prior flattened to its
    square root, neither the data's mix nor equal odds, and not calibrated: nothing here checks
    that a 0.87 is right 87 times in 100."""
    distinct = sorted({name for name in names if name})
    if not distinct:
        return {}
    logits = predict(model, distinct, device)  # (N, L), without the log prior
    probs = (logits + ALPHA * model.log_prior.cpu()).softmax(dim=1)  # (N, L)
    top_p, top_i = probs.topk(min(k, len(model.labels)), dim=1)  # (N, k)
    tops = {}
    for name, row_p, row_i in zip(distinct, top_p.tolist(), top_i.tolist()):
        tops[name] = [f"{model.labels[i]} {p:.2f}" for p, i in zip(row_p, row_i)]
    return tops

def evaluate(model, dataset, device, alphas=(ALPHA,)):
    """Return the loss and, per alpha (a share of the log prior added back), (top-1, confusion).
    A name gets one guess. Top-1 counts distinct names, a name right if the guess is any of its
    languages: counted per pair, "Abel" (filed as French and German) could never be right on both
    of its pairs. The confusion matrix counts pairs, "Abel" in French's row and German's, as a
    language's recall needs all its names: counted per name, "Abel" would sit in one row only."""
    # N distinct names, P (name, language) pairs, L labels
    names = sorted({name for name, _ in dataset})
    logits = predict(model, names, device)  # (N, L): each distinct name once
    row = {name: i for i, name in enumerate(names)}
    rows = torch.tensor([row[name] for name, _ in dataset])  # (P,): its name's row
    truth = torch.tensor([label for _, label in dataset])  # (P,): its language
    prior = model.log_prior.cpu()  # (L,)
    loss = F.cross_entropy(logits[rows] + prior, truth).item()  # the training loss
    results = []
    for alpha in alphas:
        guess = (logits + alpha * prior).argmax(dim=1)[rows]  # (P,): its name's
        # top-1, per name: right if any of its pairs is right
        hits = zip(dataset, (guess == truth).tolist())
        top1 = len({name for (name, _), hit in hits if hit}) / len(names)
        # confusion, per pair: row = true language, column = guess; accumulate adds repeats
        confusion = torch.zeros(len(prior), len(prior), dtype=torch.long)  # (L, L)
        confusion.index_put_((truth, guess), torch.ones_like(truth), accumulate=True)
        results.append((top1, confusion))
    return loss, results

def recall(confusion):
    """Per language, (L,): the share of its pairs guessed as it."""
    return confusion.diag() / confusion.sum(dim=1).clamp(min=1)

# Why balanced accuracy: a classifier that always answers "Russian" learned nothing, yet it is
# right on about half the names, a top-1 of about 0.5. Its recall is 1 for Russian and 0 for the
# 17 other languages, a balanced accuracy of 1/18. Top-1 is mostly Russian and English names;
# balanced accuracy counts each language the same, so it shows whether the rare ones are learned.
def balanced(confusion):
    """Balanced accuracy: the mean of the recalls of the languages present."""
    return recall(confusion)[confusion.sum(dim=1) > 0].mean().item()

def report(model, test_set, device):
    """Top-1 and balanced accuracy at the shares of "Logit adjustment", then each recall."""
    _, results = evaluate(model, test_set, device, alphas=(ALPHA, 1.0, 0.0))
    (top1, confusion), (_, plain_confusion), _ = results
    other = [f"top-1 {t:.3f}, balanced {balanced(c):.3f}" for t, c in results[1:]]
    log(f"\ntest: {len({n for n, _ in test_set})} names | top-1 accuracy {top1:.3f} | balanced "
        f"accuracy {balanced(confusion):.3f} | prior share {ALPHA} | share 1 (no correction): "
        f"{other[0]} | share 0 (languages equally likely): {other[1]}")
    log(f"\n{'language':<12} {'pairs':>5}  recall at share {ALPHA} (at share 1)")
    plain = recall(plain_confusion).tolist()
    for i, r in enumerate(recall(confusion).tolist()):
        log(f"{model.labels[i]:<12} {int(confusion[i].sum()):>5}  {r:.2f} ({plain[i]:.2f}) "
            f"{'#' * round(20 * r)}")

# --- Checkpoints -------------------------------------------------------------
def save_checkpoint(path, model):
    """Write {"kind", "config", "model"} to path.tmp, then rename it over path: all or nothing."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as f:
        torch.save({"kind": KIND, "config": model.config, "model": model.state_dict()}, f)
    os.replace(tmp, path)

def load_checkpoint(path, device):
    try:  # weights_only=True: a file from elsewhere can run no code
        state = torch.load(path, map_location=device, weights_only=True)
        model = NameClassifier(**state["config"])
        model.load_state_dict(state["model"])
    except Exception as e:  # missing, not torch's, not a dict, another script's, other sizes
        sys.exit(f"error: no usable checkpoint at {path} ({type(e).__name__}); train one: "
                 f"python {HERE.name}/train.py")
    return model.to(device)

# --- Command line ------------------------------------------------------------
def pick_device(name):
    """auto: CUDA when present, else the CPU; Apple's MPS only when asked for (untested)."""
    has = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if name == "auto":
        name = "cuda" if has["cuda"] else "cpu"
    if not has[name]:
        sys.exit(f"error: --device {name} is not available here; use --device cpu or auto")
    return torch.device(name)

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.error = lambda message: p.exit(2, f"error: {message}\n")  # one line, no usage
    add = p.add_argument
    add("--data-dir", type=Path, default=HERE.parent / "data", help="holds names/<label>.txt")
    add("--checkpoint", type=Path, default=HERE / "model.pt", help="the model file")
    add("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
        help="auto: cuda if present, else cpu; mps (untested) only if asked")
    add("--seed", type=int, default=0, help="seeds the split, the weights and the batch order")
    add("--epochs", type=int, default=10, help="passes over the training names")
    add("--max-steps", type=int, default=0, help="stop after N steps (0: no limit)")
    add("--batch-size", type=int, default=128, help="names per optimisation step")
    add("--lr", type=float, default=4e-3, help="peak learning rate of AdamW")
    add("--log-every", type=int, default=50, help="print progress every N steps")
    add("--predict", nargs="+", metavar="NAME", help="classify names ('-': lines of stdin) with "
        f"softmax(logits + {ALPHA} * log prior): beliefs under a square-rooted prior, uncalibrated")
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    log(f"device {device}")
    torch.manual_seed(args.seed)  # the initial weights and dropout
    try:  # one boundary for the whole run: a file or the network fails as an OSError (below)
        if args.predict:  # a line out per line in, a blank stdin line as a blank line
            model = load_checkpoint(args.checkpoint, device)
            sys.stdin.reconfigure(errors="replace")  # odd bytes read as U+FFFD
            lines = sys.stdin.read().splitlines() if args.predict == ["-"] else args.predict
            names = [read_name(line) for line in lines]  # None: no letter in the line
            tops = likeliest(model, names, device)  # {name: ["English 0.87", ...]}
            status = 0
            for line, name in zip(lines, names):
                if not name and (line.strip() or args.predict != ["-"]):
                    log(f"error: {line[:40]!r} has no letters; give a name like 'Hinton'")
                    status = 1
                print("\t".join([line.replace("\t", " ")] + tops.get(name, [])))
            sys.exit(status)
        labels, examples = read_names(args.data_dir)
        train_set, val_set, test_set = split_by_name(examples, args.seed)
        chars = sorted(set("".join(name for name, _ in train_set)))
        counts = torch.bincount(torch.tensor([y for _, y in train_set]), minlength=len(labels))
        log(f"{len(examples)} (name, language) pairs, {len(labels)} languages, {len(chars)} "
            f"characters | train {len(train_set)}, val {len(val_set)}, test {len(test_set)}")
        model = NameClassifier(chars, labels, counts.tolist()).to(device)
        train(args, model, train_set, val_set, device, partial(save_checkpoint, args.checkpoint))
        report(load_checkpoint(args.checkpoint, device), test_set, device)  # saved last
    except KeyboardInterrupt:  # Ctrl-C: one line, and exit 130 as shells do
        log("interrupted")
        sys.exit(130)
    except BrokenPipeError:  # the reader left (`| head -1`): end quietly, as the Python docs do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as e:  # a file missing, unreadable or unwritable; no network (a URLError)
        sys.exit(f"error: {e}")

if __name__ == "__main__":
    main()
