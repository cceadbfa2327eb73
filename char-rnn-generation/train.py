"""Generate surnames that sound like a chosen language with a character-level LSTM.
A language model over characters, conditioned on the language: it learns p(next character |
language, characters so far) from names/<label>.txt files, then writes names letter by letter.
    python char-rnn-generation/train.py  # train; samples and the test NLL on stderr; model.pt
    python char-rnn-generation/train.py --sample --language Russian --num 5  # stdout: 5 names
    python char-rnn-generation/train.py --sample --language Irish Scottish --temperature 0.7
Since the 2017 tutorial:
- an LSTM, not a hand-written cell with no nonlinearity, trained on padded batches of names;
- a held-out NLL; names sampled with dropout off, from no given first letter, never empty.
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
from collections import namedtuple
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pad_sequence
from unidecode import unidecode

KIND = "char-rnn-generation"
DATA_URL = os.environ.get("PRACTICAL_PYTORCH_DATA_URL",
                          "https://download.pytorch.org/tutorial/data.zip")
HERE = Path(__file__).resolve().parent
PAD = 0  # fills names shorter than the longest of their batch; the loss ignores it
START = 1  # the first input of every name, so p(first letter) is learned too
END = 2  # predicted after the last letter: how the model learns where names stop
N_SPECIAL = 3  # character i of the vocabulary is token i + 3
MAX_LEN = 30  # at most this many symbols drawn per name; the longest surname has 20
REPORT_SAMPLES = 10  # samples per language in the final report, at temperature 1.0
WEIGHT_DECAY = 0.01  # AdamW shrinks each weight by lr * 1% a step: less overfitting
GRAD_CLIP = 1.0  # a gradient norm over 1 is scaled down to 1: no batch jolts the model
NO_GRAD_BATCH = 2048  # names scored or sampled at once, which bounds the memory

def log(*parts):
    """Progress, notes and errors go to stderr, so stdout carries only the answers."""
    print(*parts, file=sys.stderr, flush=True)

# --- Data --------------------------------------------------------------------
def download(data_dir):
    """Move the tutorial archive's whole data/ folder into data_dir: one download serves all
    three scripts. Unpacked in a temporary folder first, it never leaves half a data set."""
    if data_dir.is_file():
        sys.exit(f"error: --data-dir {data_dir} is a file; pass the folder that holds the data")
    log(f"downloading {DATA_URL} into {data_dir} (offline? put its data/ files there by hand)")
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        with urllib.request.urlopen(DATA_URL, timeout=60) as response:
            zipfile.ZipFile(io.BytesIO(response.read())).extractall(tmp)
        for item in (Path(tmp) / "data").iterdir():
            if not (data_dir / item.name).exists():
                os.replace(item, data_dir / item.name)

def read_names(data_dir):
    """Return (sorted labels, sorted distinct (name, label index) pairs) from names/*.txt."""
    if not (data_dir / "names").is_dir():
        download(data_dir)
    files = sorted((data_dir / "names").glob("*.txt"))
    pairs = set()  # Arabic.txt lists ~100 names twenty times: once teaches as much
    for label, path in enumerate(files):
        # errors="replace": a stray non-UTF-8 byte costs a letter, not the run
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        # unidecode turns "Šimon" into "Simon": an ASCII alphabet of ~55 characters, not 1000s.
        names = (unidecode(line).strip() for line in lines)
        pairs.update((name, label) for name in names if name)
    return [f.stem for f in files], sorted(pairs)

def split_by_name(pairs, seed):
    """80/10/10 by *distinct name*: by pair, "Abel" could train as French and test as German."""
    names = sorted({name for name, _ in pairs})
    random.Random(seed).shuffle(names)
    n_train = int(0.8 * len(names))
    n_val = int(0.9 * len(names))
    sides = [set(names[:n_train]), set(names[n_train:n_val]), set(names[n_val:])]
    return [[pair for pair in pairs if pair[0] in side] for side in sides]

# An encoded split: tokens (n, longest + 2), each row START c1 ... cn END PAD...; labels (n,).
Names = namedtuple("Names", ["tokens", "labels"])

def encode(pairs, stoi):
    """(name, label) pairs -> (Names, how many were dropped): a name with a character not in
    stoi is dropped, as the model has no output for that character to score."""
    kept = [(name, label) for name, label in pairs if set(name) <= stoi.keys()]
    if not kept:  # too few distinct names in the data, or only unseen characters
        sys.exit("error: a split has no usable names; names/<label>.txt need 10+ distinct names")
    rows = [torch.tensor([START] + [stoi[c] for c in name] + [END]) for name, _ in kept]
    tokens = pad_sequence(rows, batch_first=True, padding_value=PAD)
    return Names(tokens, torch.tensor([label for _, label in kept])), len(pairs) - len(kept)

# --- Model -------------------------------------------------------------------
class NameGenerator(nn.Module):
    """Language embedding + character embedding -> LSTM -> logits for the next symbol. The
    language's learned vector joins the character embedding at *every* step, so each prediction
    can consult it. Logits: one unnormalised score per symbol; softmax makes p. The LSTM carries
    two states along a name: c, the cell state, a memory its learned gates add to and erase at
    each step, and h, the hidden state, what it reads out of c as its output. forward() returns
    (h, c) after the last column: meaningful for unpadded input (as when sampling) only."""
    def __init__(self, chars, labels, embed_size=32, hidden_size=320, dropout=0.4):
        super().__init__()
        self.config = dict(chars=chars, labels=labels, embed_size=embed_size,
                           hidden_size=hidden_size, dropout=dropout)
        self.chars = chars
        self.labels = labels
        self.label_embedding = nn.Embedding(len(labels), embed_size)
        self.char_embedding = nn.Embedding(len(chars) + N_SPECIAL, embed_size, padding_idx=PAD)
        self.rnn = nn.LSTM(2 * embed_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)  # on after .train(), off after .eval()
        self.head = nn.Linear(hidden_size, len(chars) + N_SPECIAL)

    def forward(self, labels, inputs, hidden=None):
        B, T = inputs.shape  # names, steps; E, H, V: embedding, hidden, vocab sizes
        chars = self.char_embedding(inputs)  # (B, T, E)
        lang = self.label_embedding(labels)[:, None].expand(B, T, -1)  # (B, T, E)
        # No pack_padded_sequence needed: padding sits at the end and the LSTM only looks back,
        # so outputs at real positions never see a pad; the loss ignores the pad positions.
        out, hidden = self.rnn(torch.cat([chars, lang], -1), hidden)  # (B, T, H)
        return self.head(self.dropout(out)), hidden  # (B, T, V); h and c (1, B, H)

# --- Training ----------------------------------------------------------------
def batch_loss(model, data, rows, device, reduction="mean"):
    """Cross-entropy of each next symbol of the names at `rows`, and the symbols counted. Teacher
    forcing: the model reads the true name shifted right by one, all positions in one pass:
        inputs    <S>  H   i   n   t   o   n
        targets    H   i   n   t   o   n  <E>
    Its cost, exposure bias: training never shows the model its own mistakes, so a sampled name
    that takes an odd turn goes on from a prefix unlike any it learned from."""
    x = data.tokens[rows]  # (B, longest name in the whole set + 2)
    x = x[:, :int((x != PAD).sum(1).max())].to(device)  # (B, T + 1): no all-pad column
    inputs = x[:, :-1]  # (B, T)
    targets = x[:, 1:]  # (B, T)
    logits, _ = model(data.labels[rows].to(device), inputs)  # (B, T, vocab)
    # cross_entropy = log_softmax + NLLLoss; it wants (N, classes); ignore_index skips pads.
    loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                       ignore_index=PAD, reduction=reduction)
    return loss, int((targets != PAD).sum())

def train(args, model, train_set, val_set, device, save):
    # AdamW: Adam (each weight's step sized by its recent gradients) plus weight decay (above).
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=WEIGHT_DECAY, fused=True)
    steps_per_epoch = math.ceil(len(train_set.labels) / args.batch_size)
    total_steps = min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
    epochs = math.ceil(total_steps / steps_per_epoch)
    # The learning rate falls to 0 along a half cosine: big steps early, fine ones at the end.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    batch_order = torch.Generator().manual_seed(args.seed)  # shuffles names, batches
    step = 0
    best = math.inf
    start = time.time()
    lengths = (train_set.tokens != PAD).sum(1)  # (names,)
    for epoch in range(1, epochs + 1):
        model.train()
        # The LSTM reads pads too, so each batch holds names of one length: shuffle the names,
        # sort them by length (a stable sort keeps the shuffle among equals), cut, shuffle batches.
        order = torch.randperm(len(lengths), generator=batch_order)
        batches = order[lengths[order].argsort(stable=True)].split(args.batch_size)
        for k in torch.randperm(len(batches), generator=batch_order)[:total_steps - step].tolist():
            loss, _ = batch_loss(model, train_set, batches[k], device)  # forward, loss
            opt.zero_grad(set_to_none=True)  # backward and update
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            opt.step()
            sched.step()
            step += 1
            if step % args.log_every == 0 or step == total_steps:  # log
                elapsed = time.time() - start
                log(f"epoch {epoch}/{epochs} | step {step}/{total_steps} | loss {loss.item():.4f} "
                    f"| {elapsed:.0f}s elapsed, ETA {elapsed / step * (total_steps - step):.0f}s")
        val = evaluate(model, val_set, device)
        if not math.isfinite(val):  # stop: no older model may pass for this run's
            sys.exit(f"error: the loss became {val}; try a lower --lr")
        log(f"epoch {epoch}/{epochs} done | val NLL {val:.4f} nats/char")
        if val < best:  # the best on validation: later epochs can overfit
            best = val
            save(model)

# --- Evaluation --------------------------------------------------------------
@torch.inference_mode()  # no autograd graph is recorded: faster, and less memory
def evaluate(model, data, device):
    """NLL, the negative log-likelihood per character: the mean of -ln p(true next symbol) over
    each symbol predicted (every letter, the first too, and END). Natural logs give nats; bits =
    nats / ln 2. Perplexity e^NLL: the model is as unsure as a fair pick among that many."""
    model.eval()
    chunks = torch.arange(len(data.labels)).split(NO_GRAD_BATCH)  # rows per batch
    sums = [batch_loss(model, data, rows, device, reduction="sum") for rows in chunks]
    return sum(loss.item() for loss, _ in sums) / sum(n for _, n in sums)

def bigrams(data):
    """Each pair of neighbours (START -> 1st letter, ..., last -> END): label, previous, next."""
    real = data.tokens[:, 1:] != PAD  # (names, time): a real next symbol
    labels = data.labels[:, None].expand_as(real)  # (names, time)
    return labels[real], data.tokens[:, :-1][real], data.tokens[:, 1:][real]

def bigram_nll(train_set, test_set, n_labels, n_tokens):
    """The baseline to beat, a bigram model per language: counts[label, previous, next] += 1 per
    pair of neighbours in the training names (index_put_ with accumulate=True: repeats add up).
    Add 1 to every count, so no held-out pair gets p = 0, and V to each row's total: p sums to 1."""
    counts = torch.zeros(n_labels, n_tokens, n_tokens)  # (label, previous, next)
    counts.index_put_(bigrams(train_set), torch.tensor(1.0), accumulate=True)
    V = n_tokens - 2  # the characters and END: PAD and START are never predicted
    log_p = ((counts + 1) / (counts.sum(-1, keepdim=True) + V)).log()  # like counts
    return -log_p[bigrams(test_set)].mean().item()

@torch.inference_mode()
def sample(model, label, num, device, temperature=1.0):
    """Draw `num` names for one label at once, a symbol per step, from p: the argmax would write
    one name per language, always the same. The temperature divides the logits: below 1 it
    sharpens p, above 1 it flattens it. A name still going after MAX_LEN is drawn again."""
    model.eval()  # dropout off: sampling uses the whole trained network
    names = []
    redrawn = 0
    while len(names) < num:
        n = min(num - len(names), NO_GRAD_BATCH)
        out = torch.full((n, MAX_LEN), PAD, device=device)  # the drawn symbols
        rows = torch.arange(n, device=device)  # (rows,): the unfinished names' rows
        token = torch.full((n, 1), START, device=device)  # (rows, 1): read next
        hidden = None  # then (h, c): all that each unfinished name has read so far
        for t in range(MAX_LEN):
            logits, hidden = model(torch.full_like(rows, label), token, hidden)
            logits = logits[:, -1] / temperature  # (rows, vocab)
            logits[:, [PAD, START]] = -math.inf  # never emit these two
            # END first would be an empty name: masked at t = 0, softmax renormalises the rest.
            if t == 0:
                logits[:, END] = -math.inf
            token = torch.multinomial(logits.softmax(-1), 1)  # (rows, 1)
            out[rows, t] = token[:, 0]
            alive = token[:, 0] != END  # (rows,): the names still being written
            if not alive.any():
                break
            rows = rows[alive]
            token = token[alive]
            hidden = tuple(h[:, alive] for h in hidden)  # (1, rows, hidden) each
        ended = out[(out == END).any(1)]  # cut off at MAX_LEN: drawn again
        redrawn += n - len(ended)
        if redrawn > 10 * num:  # e.g. a very low --temperature stuck in a loop
            sys.exit(f"error: most names do not end within {MAX_LEN} characters; try --temperature")
        for row in ended.tolist():
            names.append("".join(model.chars[i - N_SPECIAL] for i in row if i > END))  # letters
    return names

def report(model, train_set, test_set, dropped, train_names, device):
    """Samples, then the test NLL beside two baselines. A uniform guess gives each of the V symbols
    (characters and END) p = 1/V: NLL ln V. A bigram model sees only the previous symbol: the
    LSTM's margin over it is what remembering more of the name buys."""
    log(f"\nsamples at temperature 1.0, {REPORT_SAMPLES} per label (first 5 shown):")
    every = []
    for i, label in enumerate(model.labels):
        every += sample(model, i, REPORT_SAMPLES, device)
        log(f"  {label:<12} {', '.join(every[-REPORT_SAMPLES:][:5])}")
    test = evaluate(model, test_set, device)
    V = len(model.chars) + 1
    bigram = bigram_nll(train_set, test_set, len(model.labels), V + 2)
    new = sum(name not in train_names for name in every)  # not a training name
    log(f"\ntest: {len(test_set.labels)} (name, label) pairs ({dropped} dropped: unseen "
        f"character) | NLL {test:.4f} nats/char = {test / math.log(2):.4f} bits/char, perplexity "
        f"{math.exp(test):.2f} | uniform ln(V = {V}) {math.log(V):.4f} | add-one bigram "
        f"{bigram:.4f} | {len(every)} samples: {new / len(every):.1%} new, "
        f"{len(set(every)) / len(every):.1%} distinct")

# --- Checkpoints -------------------------------------------------------------
def save_checkpoint(path, model):
    """Save {"kind", "config", "model"} to a temporary file, renamed over `path` in one step:
    a Ctrl-C never leaves half a checkpoint. A path that cannot be written fails as an OSError."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as f:
        torch.save({"kind": KIND, "config": model.config, "model": model.state_dict()}, f)
    os.replace(tmp, path)

def load_checkpoint(path, device):
    """Rebuild the saved model. weights_only=True: a file from elsewhere can run no code."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        if state.get("kind") != KIND:
            sys.exit(f"error: {path} is a {state.get('kind') or 'foreign'} checkpoint, not {KIND}")
        model = NameGenerator(**state["config"])
        model.load_state_dict(state["model"])
    except Exception as e:  # missing, not torch's, not a dict, missing keys, other sizes
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
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.error = lambda message: p.exit(2, f"error: {message}\n")  # one line, no usage
    add = p.add_argument
    add("--data-dir", type=Path, default=HERE.parent / "data", help="holds names/<label>.txt")
    add("--checkpoint", type=Path, default=HERE / "model.pt", help="the model file")
    add("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
        help="auto: cuda if present, else cpu; mps (untested) only if asked")
    add("--seed", type=int, default=0,
        help="seeds the split, the weights, the batch order and sampling: same seed, same names")
    add("--epochs", type=int, default=14, help="passes over the training names")
    add("--max-steps", type=int, default=0, help="stop after N steps (0: no limit)")
    add("--batch-size", type=int, default=64, help="names per step")
    add("--lr", type=float, default=4e-3, help="peak learning rate of AdamW")
    add("--log-every", type=int, default=50, help="print progress every N steps")
    add("--sample", action="store_true", help="print names from the checkpoint to stdout")
    add("--language", nargs="+", default=["all"], help="label(s) to sample, or all")
    add("--num", type=int, default=10, help="names per language, at most 100000")
    add("--temperature", type=float, default=1.0, help="lower: safer; in [0.001, 1000]")
    args = p.parse_args(argv)
    # The numbers are checked here, once; NaN fails every comparison, so it is refused too.
    for name in ["epochs", "batch_size", "lr", "log_every"]:
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if not (0 <= args.seed < 2**63 and args.max_steps >= 0):
        p.error("--seed and --max-steps must be 0 or more (--seed below 2**63)")
    if not (0 < args.num <= 100_000 and 1e-3 <= args.temperature <= 1e3):
        p.error("--num must be in [1, 100000] and --temperature in [0.001, 1000]")
    if not args.checkpoint.name:
        p.error("--checkpoint needs a file name")
    return args

def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    log(f"device {device}")
    torch.manual_seed(args.seed)  # the initial weights, dropout and sampling
    try:  # one boundary for the whole run: a file or the network fails as an OSError (below)
        if args.sample:
            model = load_checkpoint(args.checkpoint, device)
            known = model.labels
            wanted = known if "all" in args.language else list(dict.fromkeys(args.language))
            unknown = [w for w in wanted if w not in known]
            if unknown:
                sys.exit(f"error: unknown --language {unknown[0]!r}; try: {', '.join(known)}, all")
            for language in wanted:  # --num names each, in this order
                names = sample(model, known.index(language), args.num, device, args.temperature)
                print("\n".join(names), flush=True)
            return
        labels, pairs = read_names(args.data_dir)
        train_pairs, val_pairs, test_pairs = split_by_name(pairs, args.seed)
        chars = sorted(set("".join(name for name, _ in train_pairs)))  # training alphabet
        stoi = {c: i + N_SPECIAL for i, c in enumerate(chars)}
        train_set, _ = encode(train_pairs, stoi)  # none dropped: their alphabet
        val_set, val_dropped = encode(val_pairs, stoi)
        test_set, test_dropped = encode(test_pairs, stoi)
        log(f"{len(labels)} labels, {len(pairs)} (name, label) pairs: train {len(train_pairs)}, "
            f"val {len(val_set.labels)}, test {len(test_set.labels)} ({val_dropped} and "
            f"{test_dropped} dropped: unseen character); {len(chars)} characters")
        model = NameGenerator(chars, labels).to(device)
        train(args, model, train_set, val_set, device, partial(save_checkpoint, args.checkpoint))
        model = load_checkpoint(args.checkpoint, device)  # the best, not the last
        report(model, train_set, test_set, test_dropped, {n for n, _ in train_pairs}, device)
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
