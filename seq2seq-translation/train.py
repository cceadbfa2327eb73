"""Translate French to English with a sequence-to-sequence GRU and attention.
An encoder reads French; a decoder writes English word by word, looking back at the French it
needs through attention: the third "practical PyTorch" tutorial, for PyTorch 2.x.
    python seq2seq-translation/train.py              # train (~2 min on 2 CPU cores), save model.pt
    python seq2seq-translation/train.py --translate - < french.txt > english.txt"""

import argparse
import math
import os
import random
import re
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from unidecode import unidecode

KIND = "seq2seq-translation"  # stored in each checkpoint, checked on load
DATA_URL = os.environ.get("PRACTICAL_PYTORCH_DATA_URL",
                          "https://download.pytorch.org/tutorial/data.zip")
HERE = Path(__file__).resolve().parent
SPECIALS = ["<pad>", "<sos>", "<eos>", "<unk>"]
PAD, SOS, EOS, UNK = range(4)  # their ids in both vocabularies
PREFIXES = ("i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are", "you re ",
            "we are", "we re ", "they are", "they re ")  # the 2017 tutorial's English subset
MAX_LENGTH = 10  # longest sentence kept, in words (the 2017 tutorial: 9)
DROPOUT = 0.1  # in training, zero each embedding and output number at this rate
WEIGHT_DECAY = 0.01  # AdamW shrinks each weight by lr * 1% of itself per step
GRAD_CLIP = 1.0  # larger gradient norms are scaled down to it: no wild steps
LABEL_SMOOTHING = 0.1  # aim at 0.9, not 1: the logged loss is not the NLL
HEADS = 4  # --attention multihead: heads, each comparing --size / HEADS numbers
ALPHA = 1.0  # length penalty ((5 + length) / 6) ** ALPHA: 0 none, more: longer
MARGIN = 10  # an output may have 2 * (source words) + MARGIN words, then it is cut

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

def tokenize(text):  # ASCII, lower case: "Déjà là ?" -> deja la ?
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", unidecode(text).lower().replace("'", " "))

def read_pairs(path):  # [French, English] word lists from English<TAB>French lines
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:  # a folder, no permission...
        sys.exit(f"error: cannot read {path} ({e.strerror})")
    pairs = []
    for line in lines:
        fields = [tokenize(field) for field in line.split("\t")[:2]]  # [English, French]
        if len(fields) == 2 and fields[1] and " ".join(fields[0]).startswith(PREFIXES):
            if max(map(len, fields)) <= MAX_LENGTH:
                pairs.append(fields[::-1])
    if not pairs:
        sys.exit(f"error: no pairs of <= {MAX_LENGTH} words starting 'i am', 'he is'... in {path}")
    return pairs

def split_by_source(pairs, seed):
    """80/10/10 by *distinct* French sentence: one seen in training would test memory, not skill."""
    sources = sorted({" ".join(source) for source, _ in pairs})
    random.Random(seed).shuffle(sources)
    n_train = int(0.8 * len(sources))
    n_val = int(0.9 * len(sources))
    sides = [set(sources[:n_train]), set(sources[n_train:n_val]), set(sources[n_val:])]
    return [[pair for pair in pairs if " ".join(pair[0]) in side] for side in sides]

def build_vocab(sentences):  # the specials, then each training word; others read as <unk>
    return SPECIALS + sorted({word for sentence in sentences for word in sentence})

def encode(sentences, stoi, device, start=(), end=()):  # unknown words become <unk>
    rows = [torch.tensor([*start, *(stoi.get(w, UNK) for w in s), *end]) for s in sentences]
    ids = pad_sequence(rows, batch_first=True, padding_value=PAD)  # (batch, time)
    return ids.to(device), torch.tensor([len(row) for row in rows])  # lengths stay on the CPU

# --- Model -------------------------------------------------------------------
def attend(query, keys, values, mask):
    """Scores each query against each source word's key; their softmax weighs the values. Same
    as F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None], scale=1.0): True=attend."""
    scores = query @ keys.transpose(1, 2)  # (B, T, S) from (B, T, d) and (B, S, d)
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))  # padding: weight exactly 0
    weights = scores.softmax(dim=-1)  # (B, T, S); the 2017 tutorial let attention see padding
    return weights @ values, weights  # context (B, T, d_v) from values (B, S, d_v)

class Translator(nn.Module):
    """Bidirectional GRU encoder, GRU decoder, attention (Luong et al. 2015): each decoder state
    h_t queries the encoder states e_s. luong: query W h_t, key = value = e_s. multihead: learned
    projections in HEADS heads that each attend their own way, scores / sqrt(size / HEADS) so
    long dot products do not saturate the softmax (the Transformer's nn.MultiheadAttention)."""
    def __init__(self, src_vocab, tgt_vocab, size, attention):
        super().__init__()
        self.config = dict(src_vocab=src_vocab, tgt_vocab=tgt_vocab, size=size, attention=attention)
        self.src_stoi = {w: i for i, w in enumerate(src_vocab)}  # word -> id
        self.tgt_stoi = {w: i for i, w in enumerate(tgt_vocab)}
        self.src_embed = nn.Embedding(len(src_vocab), size, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(len(tgt_vocab), size, padding_idx=PAD)
        nn.init.zeros_(self.src_embed.weight[UNK])  # no training word is <unk>: 0s, not noise
        self.encoder = nn.GRU(size, size, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * size, size)  # last encoder states -> decoder h_0
        self.decoder = nn.GRU(size, size, batch_first=True)  # no input feeding: no loop
        if attention == "luong":
            self.attn = nn.Linear(size, 2 * size, bias=False)  # W of query W h_t
        else:  # kdim, vdim: e_s's size; contexts come out with `size` numbers
            self.attn = nn.MultiheadAttention(size, HEADS, kdim=2 * size, vdim=2 * size,
                                              batch_first=True)
        self.mix = nn.Linear(size + (2 * size if attention == "luong" else size), size)  # [h; c]
        self.out = nn.Linear(size, len(tgt_vocab))  # logits: a raw score per word
        self.out.weight = self.tgt_embed.weight  # tied: fewer weights; trains <pad>'s row too
        self.drop = nn.Dropout(DROPOUT)
    def run_encoder(self, src, lengths):  # packed: the backward GRU starts at the last word
        emb = self.drop(self.src_embed(src))  # (B, S, size) from src (B, S)
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        states, last = self.encoder(packed)  # last: (2 directions, B, size)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.size(1))
        hidden = torch.tanh(self.bridge(torch.cat([last[0], last[1]], dim=1)))  # (B, size)
        return (states, src != PAD), hidden.unsqueeze(0)  # states (B, S, 2 * size), mask (B, S)
    def run_decoder(self, prev, hidden, states, mask, need_weights=True):  # prev: (B, T) ids
        h, hidden = self.decoder(self.drop(self.tgt_embed(prev)), hidden)  # h (B, T, size)
        if isinstance(self.attn, nn.Linear):  # luong
            context, weights = attend(self.attn(h), states, states, mask)  # (B, T, 2 * size)
        else:  # TRAP: key_padding_mask True = IGNORE, unlike SDPA's; fused SDPA if no weights
            context, weights = self.attn(h, states, states, key_padding_mask=~mask,
                                         need_weights=need_weights)  # (B, T, size)
        mixed = torch.tanh(self.mix(torch.cat([h, context], dim=-1)))  # (B, T, size)
        return self.drop(mixed), hidden, weights  # (B, T, size): self.out makes the logits

# --- Training ----------------------------------------------------------------
def train(args, model, train_set, val_set, device, save):
    """Teacher forcing: the decoder reads the true previous word, not its guess, so a sentence
    trains in one call. Its cost, exposure bias: in use it reads its own guesses, mistakes and
    all. AdamW: Adam with weight decay kept apart; fused=True: one kernel updates all weights."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=WEIGHT_DECAY, fused=True)
    steps_per_epoch = math.ceil(len(train_set) / args.batch_size)
    total_steps = min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
    epochs = math.ceil(total_steps / steps_per_epoch)  # fewer if --max-steps cuts
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)  # --lr glides to 0
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=LABEL_SMOOTHING)  # pad: skipped
    batch_order = torch.Generator().manual_seed(args.seed)
    best_bleu = -1.0
    step = 0
    start = time.time()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train_set), generator=batch_order).tolist()
        order.sort(key=lambda j: len(train_set[j][0]))  # stable: like lengths, a third less padding
        batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        for k in torch.randperm(len(batches), generator=batch_order)[:total_steps - step].tolist():
            # the batch: "i am ." -> decoder input "<sos> i am ." and target "i am . <eos>"
            batch = [train_set[j] for j in batches[k]]
            src, lengths = encode([s for s, _ in batch], model.src_stoi, device)  # (B, S)
            tgt, _ = encode([t for _, t in batch], model.tgt_stoi, device, (SOS,), (EOS,))

            # forward and loss, every target position at once
            memory, hidden = model.run_encoder(src, lengths)
            features, _, _ = model.run_decoder(tgt[:, :-1], hidden, *memory, need_weights=False)
            real = tgt[:, 1:] != PAD  # (B, T): the output layer skips padding (~1/3)
            loss = loss_fn(model.out(features[real]), tgt[:, 1:][real])  # (N, vocab), (N,)

            opt.zero_grad(set_to_none=True)  # update
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            opt.step()
            sched.step()
            step += 1

            if step % args.log_every == 0 or step == total_steps:  # progress (.item() waits)
                seconds = time.time() - start
                log(f"epoch {epoch}/{epochs} | step {step}/{total_steps} | loss {loss.item():.4f} "
                    f"| {seconds:.0f}s elapsed, ETA {seconds / step * (total_steps - step):.0f}s")
        if 3 * epoch <= 2 * epochs:  # validating costs a fifth of an epoch, and with the rate
            continue  # decaying to 0 the best epoch came in the last third in every run we made
        val_bleu = evaluate(model, val_set, device)[0]  # greedy: fast, ranks epochs
        if val_bleu > best_bleu:  # strictly: on a tie, the earlier checkpoint stays
            best_bleu = val_bleu
            save(model)
        log(f"epoch {epoch}/{epochs} done | val BLEU {val_bleu:.1f} | best {best_bleu:.1f}")

# --- Evaluation --------------------------------------------------------------
@torch.inference_mode()  # no autograd graph; replaces volatile=True Variables
def translate(model, sentences, device, beam=1):  # -> (words, attention) each
    """Beam search: each sentence keeps its `beam` most likely partial translations as rows:
        sentence:  0  0  0 | 1  1  1      n = 2 running sentences, beam = 3: row r belongs
        row:       0  1  2 | 3  4  5      to running[r // beam]; rows 0, 3... rank first.
    Candidates are ranked by log-probability over a length penalty (raw sums favour short
    outputs), but the raw sum is carried: the penalty's length grows, so it is applied afresh."""
    model.eval()
    src, lengths = encode(sentences, model.src_stoi, device)  # (n, S), (n,)
    memory, hidden = model.run_encoder(src, lengths)
    memory = [m.repeat_interleave(beam, dim=0) for m in memory]  # (n * beam, S, ...) each
    hidden = hidden.repeat_interleave(beam, dim=1)  # (1, n * beam, size)
    limit = (2 * lengths + MARGIN).repeat_interleave(beam).to(device)  # (n * beam,)
    logp_sum = torch.full((len(sentences), beam), float("-inf"), device=device)  # (n, beam)
    logp_sum[:, 0] = 0.0  # a sentence's rows start equal: only its row 0 may expand at first
    words = torch.full((len(limit), 1), SOS, device=device)  # (n * beam, steps + 1)
    attn = torch.zeros(len(limit), 0, src.size(1), device=device)  # (n * beam, steps, S)
    done = torch.zeros(len(limit), dtype=torch.bool, device=device)  # (n * beam,)
    running = torch.arange(len(sentences), device=device)  # (n,): i of each running sentence
    results = [None] * len(sentences)  # for sentences[i]: its first row's ids, attention
    while (n := len(running)) > 0:
        features, hidden, weights = model.run_decoder(words[:, -1:], hidden, *memory)
        logp = model.out(features[:, -1]).log_softmax(dim=-1)  # (n * beam, vocab)
        vocab = logp.size(1)
        logp[:, [PAD, SOS, UNK]] = float("-inf")  # never written
        logp[done] = float("-inf")  # a finished row...
        logp[done, PAD] = 0.0  # ...goes on with <pad> only, at no cost
        length = (words != PAD).sum(dim=1) - done.float()  # (n * beam,) after this step, <eos> in
        candidate_sum = logp_sum.view(-1, 1) + logp  # (n * beam, vocab): raw sums
        penalty = ((5 + length) / 6) ** ALPHA  # (n * beam,); <sos> stands in for the new word
        candidate_rank = candidate_sum / penalty.unsqueeze(1)  # (n * beam, vocab)
        # A sentence's beam * vocab candidates in one row: index j is row j // vocab, word j % vocab
        top = candidate_rank.view(n, beam * vocab).topk(beam, dim=1).indices  # (n, beam)
        logp_sum = candidate_sum.view(n, beam * vocab).gather(1, top)  # (n, beam): raw sums
        first_row = beam * torch.arange(n, device=device).unsqueeze(1)  # (n, 1): 0, beam, ...
        parent = (first_row + top // vocab).view(-1)  # (n * beam,): the batch row extended
        word = (top % vocab).view(-1)  # (n * beam,): by this word
        words = torch.cat([words[parent], word.unsqueeze(1)], dim=1)  # (n * beam, steps + 2)
        attn = torch.cat([attn[parent], weights[parent]], dim=1)  # (n * beam, steps + 1, S)
        hidden = hidden[:, parent]  # (1, n * beam, size)
        done = done[parent] | (word == EOS) | (length[parent] >= limit)  # (n * beam,): ended, cut
        ended = done.view(n, beam).all(dim=1)  # (n,): all its rows ended: it leaves the batch
        for i, row in zip(running[ended].tolist(), (beam * ended.nonzero()).view(-1).tolist()):
            results[i] = (words[row, 1:].tolist(), attn[row].clone())  # its first row: the best
        keep = (~ended).repeat_interleave(beam)  # (n * beam,): the rows that run on
        running = running[~ended]  # (n_left,): i, the index in sentences, of those left
        logp_sum = logp_sum[~ended]  # (n_left, beam)
        words = words[keep]  # (n_left * beam, steps + 2)
        attn = attn[keep]  # (n_left * beam, steps + 1, S)
        hidden = hidden[:, keep]  # (1, n_left * beam, size)
        done = done[keep]  # (n_left * beam,)
        limit = limit[keep]  # (n_left * beam,)
        memory = [m[keep] for m in memory]  # (n_left * beam, S, ...) each
    if unended := sum(EOS not in row for row, _ in results):  # first rows with no <eos>
        log(f"note: {unended} translation(s) never ended, cut at 2 * source + {MARGIN} words")
    outs = [[model.config["tgt_vocab"][j] for j in row if j > EOS] for row, _ in results]  # words
    return [(out, results[i][1][:len(out) + 1, :lengths[i]].cpu()) for i, out in enumerate(outs)]

def bleu(hyps, refs):
    """Corpus BLEU-4 (Papineni et al. 2002): the geometric mean of the n-gram precisions, n = 1..4,
    times a brevity penalty (precision alone rewards saying little). refs[i]: hyps[i]'s refs."""
    def ngrams(words, n):  # each run of n words, and how often it occurs
        return Counter(zip(*(words[i:] for i in range(n))))
    matched = [0] * 4  # for n = 1..4: hypothesis n-grams found in a reference
    proposed = [0] * 4  # for n = 1..4: all hypothesis n-grams
    hyp_length = ref_length = 0
    for hyp, hyp_refs in zip(hyps, refs):
        hyp_length += len(hyp)
        ref_length += min((abs(len(r) - len(hyp)), len(r)) for r in hyp_refs)[1]  # closest
        for n in range(1, 5):
            most = Counter()  # each n-gram's highest count in one reference: "|" keeps the max
            for r in hyp_refs:
                most |= ngrams(r, n)
            matched[n - 1] += sum((ngrams(hyp, n) & most).values())  # &: "the the" matches 1 "the"
            proposed[n - 1] += max(len(hyp) - n + 1, 0)
    if min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / p) for m, p in zip(matched, proposed)) / 4
    return 100 * min(1.0, math.exp(1 - ref_length / hyp_length)) * math.exp(log_precision)

def evaluate(model, pairs, device, beam=1):  # each source against ALL its refs
    refs = {}
    for src, tgt in pairs:
        refs.setdefault(tuple(src), []).append(tgt)
    outputs = translate(model, [list(s) for s in refs], device, beam)
    return bleu([out for out, _ in outputs], list(refs.values())), list(refs), outputs

def report(model, test_set, device, beam):  # test BLEU, and one test sentence's attention
    score, sources, outputs = evaluate(model, test_set, device, beam)
    log(f"\ntest: {len(sources)} source sentences | BLEU-4 {score:.1f} | beam {beam}\n")
    out, attn = outputs[0]  # the first test sentence; rows: output words, columns: French
    widths = [max(len(w), 2) for w in sources[0]]  # darker: read more; not an alignment
    m = max(len(w) for w in out + ["<eos>"]) + 1  # the margin, for the output words
    log(" " * m + " ".join(w.ljust(width) for w, width in zip(sources[0], widths)))
    for word, row in zip(out + ["<eos>"], attn.tolist()):
        log(word.ljust(m) + " ".join(" .:-=+*#%@"[round(9 * a)] * n for a, n in zip(row, widths)))

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
        if state.get("kind") != KIND:
            sys.exit(f"error: {path} is a {state.get('kind') or 'foreign'} checkpoint, not {KIND}")
        model = Translator(**state["config"])
        model.load_state_dict(state["model"])
    except Exception as e:  # not torch's, not a dict, missing keys, other sizes
        sys.exit(f"error: {path} is not a usable checkpoint ({type(e).__name__}); retrain it")
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

def in_range(kind, low, high=math.inf):
    """An argparse type: a number of `kind` in [low, high]; nan fails every comparison."""
    def number(text):
        value = kind(text)  # argparse turns a ValueError here into "invalid number value: 'x'"
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not in [{low}, {high}]")
        return value
    return number

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.error = lambda message: p.exit(2, f"error: {message}\n")  # one line, not the usage
    add = p.add_argument
    add("--data-dir", type=Path, default=HERE.parent / "data", help="where eng-fra.txt is")
    add("--checkpoint", type=Path, default=HERE / "model.pt", help="the model file")
    add("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
        help="auto: cuda if present, else cpu; mps (untested) only if asked")
    add("--seed", type=in_range(int, 0, 2**63 - 1), default=0,
        help="seeds the split, the weights and the batch order")
    add("--epochs", type=in_range(int, 1), default=18, help="passes over the training pairs")
    add("--max-steps", type=in_range(int, 0), default=0, help="stop after N steps (0: no limit)")
    add("--batch-size", type=in_range(int, 1), default=64, help="sentence pairs per step")
    add("--lr", type=in_range(float, 1e-6, 1.0), default=5e-3, help="peak learning rate of AdamW")
    add("--log-every", type=in_range(int, 1), default=50, help="print progress every N steps")
    add("--translate", nargs="+", metavar="TEXT", help="translate these ('-': stdin lines)")
    add("--attention", default="luong", choices=["luong", "multihead"], help="its score")
    add("--size", type=in_range(int, 1), default=160, help="embedding and GRU state size")
    add("--beam", type=in_range(int, 1, 64), default=4, help="beam size (1: greedy)")
    args = p.parse_args(argv)
    if args.attention == "multihead" and args.size % HEADS:
        p.error(f"--size must divide by {HEADS} heads")
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
        train_or_translate(args, device, save)
    except KeyboardInterrupt:  # Ctrl-C: one line, and exit 130 as shells do
        if args.translate:
            log("interrupted")
        elif saved:
            log(f"interrupted: the model saved last is at {args.checkpoint}")
        else:
            log("interrupted before the first save: no checkpoint was written")
        sys.exit(130)
    except BrokenPipeError:  # the reader left (`| head -1`): end quietly, the Python docs' way
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)

def train_or_translate(args, device, save):
    if args.translate:  # a line out per line in; empty for empty
        model = load_checkpoint(args.checkpoint, device)
        if args.translate == ["-"] and hasattr(sys.stdin, "reconfigure"):
            sys.stdin.reconfigure(errors="replace")  # odd bytes become U+FFFD, not a crash
        lines = sys.stdin.read().splitlines() if args.translate == ["-"] else args.translate
        sentences = [tuple(tokenize(line)) for line in lines]  # tuples: usable as dict keys
        todo = sorted((s for s in sentences if s), key=len)  # like lengths together: fewer steps
        chunks = [todo[i:i + 512] for i in range(0, len(todo), 512)]  # 512 * beam rows at a time
        outputs = [out for chunk in chunks for out, _ in translate(model, chunk, device, args.beam)]
        english = dict(zip(todo, outputs))  # sentence -> its translation's words
        sys.stdout.writelines(" ".join(english.get(s, [])) + "\n" for s in sentences)  # in order
        return
    check_writable(args.checkpoint)
    if not (args.data_dir / "eng-fra.txt").exists():
        download(args.data_dir)
    pairs = read_pairs(args.data_dir / "eng-fra.txt")
    train_set, val_set, test_set = split_by_source(pairs, args.seed)
    if not (val_set and test_set):
        sys.exit(f"error: {len(pairs)} pairs are too few; need 10 distinct sentences")
    src_vocab = build_vocab([s for s, _ in train_set])  # training split only: as in use
    tgt_vocab = build_vocab([t for _, t in train_set])
    log(f"{len(pairs)} pairs | train {len(train_set)}, val {len(val_set)}, test {len(test_set)} "
        f"| vocab {len(src_vocab)} French, {len(tgt_vocab)} English words")
    model = Translator(src_vocab, tgt_vocab, args.size, args.attention).to(device)
    train(args, model, train_set, val_set, device, save)
    report(load_checkpoint(args.checkpoint, device), test_set, device, args.beam)  # best epoch

if __name__ == "__main__":
    main()
