"""Generate surnames that sound like a chosen language with a character-level LSTM.
A language model over characters, conditioned on the language: it learns p(next character |
language, characters so far) from names/<label>.txt files, then writes names letter by letter.
Its score on held-out names, the NLL, is the mean of -ln p(true next character).
    python char-rnn-generation/train.py  # train; samples and the test NLL on stderr; model.pt
    python char-rnn-generation/train.py --sample --language Russian --num 5  # stdout: 5 names
    python char-rnn-generation/train.py --sample --language Irish Scottish --temperature 0.7
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

KIND = "char-rnn-generation"  # stored in each checkpoint
DATA_URL = os.environ.get("PRACTICAL_PYTORCH_DATA_URL",
                          "https://download.pytorch.org/tutorial/data.zip")
HERE = Path(__file__).resolve().parent
PAD = 0  # fills names shorter than the longest of their batch; the loss ignores it
START = 1  # the first input of every name, so p(first letter) is learned too
END = 2  # predicted after the last letter: how the model learns where names stop
N_SPECIAL = 3  # PAD, START, END: the alphabet's character i is token 3 + i
MAX_LEN = 30  # at most this many symbols drawn per name; the longest surname has 20
REPORT_SAMPLES = 10  # samples per language in the final report, at temperature 1.0
WEIGHT_DECAY = 0.01  # AdamW shrinks every parameter by lr * 1% a step (see train)
GRAD_CLIP = 1.0  # a gradient longer than 1 (its norm) is scaled down to length 1
NO_GRAD_BATCH = 2048  # names scored or sampled at once, which bounds the memory

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
    """80/10/10 by *distinct name*. By pair, "Abel" could train as French and test as German:
    the test would score a spelling the model had memorised, and promise more than it does on
    names it never saw."""
    names = sorted({name for name, _ in pairs})
    random.Random(seed).shuffle(names)
    n_train = int(0.8 * len(names))
    n_val = int(0.9 * len(names))
    sides = [set(names[:n_train]), set(names[n_train:n_val]), set(names[n_val:])]
    return [[pair for pair in pairs if pair[0] in side] for side in sides]

# An encoded split: tokens (n, longest + 2), each row START c1 ... cn END PAD...; labels (n,);
# unseen: the (name, label) pairs dropped for a character outside the alphabet.
Names = namedtuple("Names", ["tokens", "labels", "unseen"])

def encode(pairs, chars):
    """(name, label) pairs -> Names. Tokens 0, 1, 2 are PAD, START and END, so the alphabet's
    character chars[i] is token N_SPECIAL + i: with chars "ab", "ba" is START 4 3 END. A pair
    whose name has a character not in chars is dropped: the model has no output to score it."""
    stoi = {c: N_SPECIAL + i for i, c in enumerate(chars)}
    kept = [(name, label) for name, label in pairs if set(name) <= stoi.keys()]
    if not kept:  # too few names in all, or every one dropped
        sys.exit("error: a split has no usable names: names/<label>.txt need 10+ distinct names in "
                 "all, and a held-out name with a character no training name has is dropped")
    rows = []
    for name, _ in kept:
        rows.append(torch.tensor([START] + [stoi[c] for c in name] + [END]))
    tokens = pad_sequence(rows, batch_first=True, padding_value=PAD)
    labels = torch.tensor([label for _, label in kept])
    return Names(tokens, labels, len(pairs) - len(kept))

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
    """The loss over each next symbol of the names at `rows`, and the symbols counted. Teacher
    forcing: the model reads the true name shifted right by one, all positions in one pass:
        inputs    <S>  H   i   n   t   o   n
        targets    H   i   n   t   o   n  <E>
    Its cost, exposure bias: training never shows the model its own mistakes, so a sampled name
    that takes an odd turn goes on from a prefix unlike any it learned from."""
    x = data.tokens[rows]  # (B, longest name in the whole set + 2)
    # B names; with START and END the longest of them has T + 1 symbols: T inputs, T targets.
    x = x[:, :int((x != PAD).sum(1).max())].to(device)  # (B, T + 1)
    inputs = x[:, :-1]  # (B, T)
    targets = x[:, 1:]  # (B, T)
    logits, _ = model(data.labels[rows].to(device), inputs)  # (B, T, vocab)
    # The loss is the NLL (negative log-likelihood), -ln p(true next symbol) in nats, with
    # p = softmax(logits); cross_entropy wants (N, classes), and ignore_index skips the pads.
    loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                       ignore_index=PAD, reduction=reduction)
    return loss, int((targets != PAD).sum())

def train(args, model, train_set, val_set, device, save):
    # AdamW is Adam plus decoupled weight decay. Adam divides each weight's step by the size
    # of its recent gradients, so a small gradient, if steady, moves it at the full rate. The
    # decay stays outside that sizing: each step multiplies every parameter, embeddings and
    # biases included, by 1 - lr * WEIGHT_DECAY (1 - 4e-5 at the peak rate). A weight stays
    # away from 0 only while its gradients keep pushing it back; what no steady gradient
    # holds up, such as a quirk of a few names, fades. That curbs overfitting.
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
        # Each batch is cut to its longest name, so names of similar length waste little compute
        # on pads: shuffle the names, sort them by length (a stable sort keeps the shuffle among
        # equal lengths), cut into batches, and shuffle the batches.
        order = torch.randperm(len(lengths), generator=batch_order)
        batches = order[lengths[order].argsort(stable=True)].split(args.batch_size)
        for k in torch.randperm(len(batches), generator=batch_order)[:total_steps - step].tolist():
            loss, _ = batch_loss(model, train_set, batches[k], device)  # forward, loss
            opt.zero_grad(set_to_none=True)  # backward and update
            loss.backward()
            # Clipping: all the gradients, as one vector, are scaled down to length GRAD_CLIP
            # if longer. In a recurrent network the gradient flows back through the same
            # weights at every time step, so it can grow step by step into a rare huge one;
            # clipped, it cannot swamp Adam's running averages.
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            opt.step()
            sched.step()
            step += 1
            # log: the loss is one batch's mean NLL, nats per symbol, with dropout on
            if step % args.log_every == 0 or step == total_steps:
                elapsed = time.time() - start
                log(f"epoch {epoch}/{epochs} | step {step}/{total_steps} | loss {loss.item():.4f} "
                    f"| {elapsed:.0f}s elapsed, ETA {elapsed / step * (total_steps - step):.0f}s")
        val = evaluate(model, val_set, device)
        if not math.isfinite(val):  # stop: no older model may pass for this run's
            sys.exit(f"error: the loss became {val}; try a lower --lr")
        log(f"epoch {epoch}/{epochs} done | val NLL {val:.4f} nats/symbol")
        if val < best:  # the best on validation: later epochs can overfit
            best = val
            save(model)

# --- Evaluation --------------------------------------------------------------
@torch.inference_mode()  # no autograd graph is recorded: faster, and less memory
def evaluate(model, data, device):
    """NLL per predicted symbol ("per character", with END counted as one): the mean of
    -ln p(true next symbol) over every letter, the first too, and END. Natural logs give nats;
    bits = nats / ln 2. Perplexity e^NLL: the model is as unsure as a fair pick among that many
    symbols. p is the softmax over all outputs, PAD and START too, which sample() masks to -inf
    (and END at its first step). No scored target is PAD or START, so training drives their p
    toward 0: this NLL is all but the NLL of the sampler's p at T = 1."""
    model.eval()
    chunks = torch.arange(len(data.labels)).split(NO_GRAD_BATCH)  # rows per batch
    sums = [batch_loss(model, data, rows, device, reduction="sum") for rows in chunks]
    return sum(loss.item() for loss, _ in sums) / sum(n for _, n in sums)

def bigram_nll(train_set, test_set, n_labels, n_chars):
    """The baseline to beat: a bigram model per language predicts each symbol from the
    previous one alone, so the LSTM's margin over it is what remembering the rest of the name
    buys. It adds 1 to counts[label, previous, next] per pair of neighbours in the training
    names (index_put_ with accumulate=True: repeats add up)."""
    n_tokens = N_SPECIAL + n_chars  # PAD, START, END, then the characters
    counts = torch.zeros(n_labels, n_tokens, n_tokens)  # (label, previous, next)
    counts.index_put_(bigrams(train_set), torch.tensor(1.0), accumulate=True)
    # Add one: each of the V symbols that can come next (the characters and END) gets count + 1,
    # so no held-out pair has p = 0, and the row total gets + V, so those V p's still sum to 1.
    # PAD and START never come next: their columns are never read.
    V = n_chars + 1
    log_p = ((counts + 1) / (counts.sum(-1, keepdim=True) + V)).log()  # like counts
    return -log_p[bigrams(test_set)].mean().item()

def bigrams(data):
    """Each pair of neighbours (START -> 1st letter, ..., last -> END): label, previous, next."""
    real = data.tokens[:, 1:] != PAD  # (names, time): a real next symbol
    labels = data.labels[:, None].expand_as(real)  # (names, time)
    return labels[real], data.tokens[:, :-1][real], data.tokens[:, 1:][real]

@torch.inference_mode()
def sample(model, language, num, device, temperature=1.0):
    """Draw `num` names of one language at once, a symbol per step, from p: the argmax would write
    one name per language, always the same; drawing gives variety in the model's proportions. On
    the CPU the same seed draws the same names; a GPU's LSTM kernels need not be deterministic.
    The temperature T divides the logits, which raises each p to the power 1/T before softmax
    renormalises: T < 1 sharpens p, T > 1 flattens it (worked below). A name still going after
    MAX_LEN symbols is drawn again."""
    model.eval()  # dropout off: sampling uses the whole trained network
    label = model.labels.index(language)
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

            # Each step draws one symbol per name, a die throw weighted by p. Say a Russian
            # name has begun "Mak" (t = 3): the default model (seed 0) gives h 0.47, s 0.22,
            # u 0.21, i 0.02; T = 0.5 makes them 0.70, 0.15, 0.14, 0.001 (i all but vanishes),
            # T = 2 makes them 0.24, 0.17, 0.16, 0.05 (i more than doubles). At T = 1, 1,000
            # throws gave h 463 times.
            token = torch.multinomial(logits.softmax(-1), 1)  # (rows, 1)
            out[rows, t] = token[:, 0]

            alive = token[:, 0] != END  # (rows,): a name that drew END leaves
            if not alive.any():
                break
            rows = rows[alive]
            token = token[alive]
            hidden = tuple(h[:, alive] for h in hidden)  # (1, rows, hidden) each

        # Keep the names that drew END; one cut off at MAX_LEN is drawn again.
        ended = out[(out == END).any(1)]  # (names kept, MAX_LEN)
        redrawn += n - len(ended)
        if redrawn > 10 * num:  # e.g. a very low --temperature stuck in a loop
            sys.exit(f"error: most names do not end within {MAX_LEN} characters; try --temperature")
        for row in ended.tolist():
            # Keep the letters, not PAD or END: token N_SPECIAL + i is the alphabet's chars[i].
            letters = [model.chars[i - N_SPECIAL] for i in row if i >= N_SPECIAL]
            names.append("".join(letters))
    return names

def report(model, train_set, test_set, train_pairs, device):
    """Samples, then the test NLL of the saved model (the best on validation) beside
    two baselines: the bigram model above, and a uniform guess, which gives each of
    the V symbols (characters and END) p = 1/V, so its NLL is ln V."""
    log(f"\nsamples at temperature 1.0, {REPORT_SAMPLES} per label (first 5 shown):")
    every = []
    for label in model.labels:
        every += sample(model, label, REPORT_SAMPLES, device)
        log(f"  {label:<12} {', '.join(every[-REPORT_SAMPLES:][:5])}")
    test = evaluate(model, test_set, device)
    V = len(model.chars) + 1
    bigram = bigram_nll(train_set, test_set, len(model.labels), len(model.chars))
    train_names = {name for name, _ in train_pairs}
    new = sum(name not in train_names for name in every)  # not a training name
    log(f"\ntest: {len(test_set.labels)} (name, label) pairs ({test_set.unseen} dropped: unseen "
        f"character) | NLL {test:.4f} nats/symbol = {test / math.log(2):.4f} bits/symbol, "
        f"perplexity {math.exp(test):.2f} | uniform ln(V = {V}) {math.log(V):.4f} | add-one "
        f"bigram {bigram:.4f} | {len(every)} samples: {new / len(every):.1%} new, "
        f"{len(set(every)) / len(every):.1%} distinct")

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
        model = NameGenerator(**state["config"])
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
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.error = lambda message: p.exit(2, f"error: {message}\n")  # one line, no usage
    add = p.add_argument
    add("--data-dir", type=Path, default=HERE.parent / "data", help="holds names/<label>.txt")
    add("--checkpoint", type=Path, default=HERE / "model.pt", help="the model file")
    add("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
        help="auto: cuda if present, else cpu; mps (untested) only if asked")
    add("--seed", type=int, default=0, help="seeds the split, the weights, batches and sampling")
    add("--epochs", type=int, default=14, help="passes over the training names")
    add("--max-steps", type=int, default=0, help="stop after N steps (0: no limit)")
    add("--batch-size", type=int, default=64, help="names per step")
    add("--lr", type=float, default=4e-3, help="peak learning rate of AdamW")
    add("--log-every", type=int, default=50, help="print progress every N steps")
    add("--sample", action="store_true", help="names to stdout (on the CPU: same seed, same names)")
    add("--language", nargs="+", default=["all"], help="label(s) to sample, or all")
    add("--num", type=int, default=10, help="names per language")
    add("--temperature", type=float, default=1.0, help="divides the logits: lower, safer")
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    log(f"device {device}")
    torch.manual_seed(args.seed)  # the initial weights, dropout and sampling
    try:  # one boundary for the whole run: a file or the network fails as an OSError (below)
        if args.sample:
            model = load_checkpoint(args.checkpoint, device)
            wanted = model.labels if "all" in args.language else args.language
            if not set(wanted) <= set(model.labels):
                sys.exit(f"error: --language must be all or one of: {', '.join(model.labels)}")
            for language in wanted:  # --num names each, in this order
                names = sample(model, language, args.num, device, args.temperature)
                print("\n".join(names), flush=True)
            return
        labels, pairs = read_names(args.data_dir)
        train_pairs, *held_out = split_by_name(pairs, args.seed)  # val, test
        chars = sorted(set("".join(name for name, _ in train_pairs)))
        train_set = encode(train_pairs, chars)  # none dropped: their alphabet
        val_set, test_set = [encode(side, chars) for side in held_out]
        log(f"train {len(train_pairs)}, val {len(val_set.labels)}, test {len(test_set.labels)} "
            f"({val_set.unseen} and {test_set.unseen} dropped: unseen character)")
        model = NameGenerator(chars, labels).to(device)
        train(args, model, train_set, val_set, device, partial(save_checkpoint, args.checkpoint))
        report(load_checkpoint(args.checkpoint, device), train_set, test_set, train_pairs, device)
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
