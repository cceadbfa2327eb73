"""
Translate French to English with a sequence-to-sequence GRU and attention.

An encoder reads a French sentence; a decoder writes the English one word by word, looking
back at the French words it needs through attention. The third "practical PyTorch" tutorial,
rewritten for PyTorch 2.x: padded batches instead of one sentence at a time, padding masked
everywhere, and BLEU on held-out sentences (the 2017 tutorial showed its training sentences).
    python seq2seq-translation/train.py              # train (~3 min on 2 CPU cores), save model.pt
    python seq2seq-translation/train.py --translate "je suis content ." --show-attention
    python seq2seq-translation/train.py --translate - < french.txt > english.txt
    python seq2seq-translation/train.py --reverse --checkpoint en-fr.pt   # English -> French

Training (data fetched into data/ if missing) logs to stderr, keeps the best checkpoint and
reports test BLEU-4, exact matches, examples, an attention map; --translate writes to stdout."""

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

KIND = "seq2seq-translation"
DATA_URL = os.environ.get("PRACTICAL_PYTORCH_DATA_URL",
                          "https://download.pytorch.org/tutorial/data.zip")
HERE = Path(__file__).resolve().parent
SPECIALS = ["<pad>", "<sos>", "<eos>", "<unk>"]
PAD, SOS, EOS, UNK = range(4)  # their ids in both vocabularies
ALPHA = 0.6  # beam search length penalty ((5 + length) / 6) ** ALPHA, as in GNMT (Wu et al. 2016)
# The 2017 tutorial's English prefixes (it kept < 10 words, we <= --max-length). I'm -> i m
PREFIXES = ("i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are", "you re ",
            "we are", "we re ", "they are", "they re ")

def log(*parts):
    print(*parts, file=sys.stderr, flush=True)

# -----------------------------------------------------------------------------
# Data
def download(data_dir):
    """Fetch the tutorial archive and unpack its data/ members into data_dir."""
    log(f"downloading {DATA_URL} into {data_dir}")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=data_dir) as tmp:  # removed, zip and all, at the end
            urllib.request.urlretrieve(DATA_URL, Path(tmp) / "data.zip")
            zipfile.ZipFile(Path(tmp) / "data.zip").extractall(tmp)
            for item in (Path(tmp) / "data").iterdir():  # moved in only once all is unpacked
                if not (data_dir / item.name).exists():
                    os.replace(item, data_dir / item.name)
    except Exception as e:  # no network, HTTP error, broken archive, full disk...
        sys.exit(f"error: could not download {DATA_URL} ({type(e).__name__}), fetch it by hand "
                 f"and unzip it into {data_dir}, or pass --data-dir")

def tokenize(text):
    """ASCII, lower case, apostrophes to spaces, punctuation split off: 'Déjà là ?' -> deja la ?"""
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", unidecode(text).lower().replace("'", " "))

def read_pairs(data_dir, max_length, all_pairs, reverse):
    """(source words, target words) pairs from eng-fra.txt lines: English<TAB>French[<TAB>...]."""
    path = data_dir / "eng-fra.txt"
    if not path.exists():
        download(data_dir)
    pairs, malformed = [], 0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:  # a folder named eng-fra.txt, no permission...
        sys.exit(f"error: cannot read {path} ({e.strerror}); check the file or pass --data-dir")
    for line in lines:
        en, fr = ([tokenize(field) for field in line.split("\t")[:2]] + [[], []])[:2]
        if not (en and fr):
            malformed += bool(line.strip())  # blank lines are not worth a mention
        elif max(len(en), len(fr)) <= max_length and (
                all_pairs or " ".join(en).startswith(PREFIXES)):
            pairs.append((en, fr) if reverse else (fr, en))
    if malformed:
        log(f"skipped {malformed} malformed lines in {path} (need English<TAB>French)")
    if not pairs:
        sys.exit(f"error: no pairs of <= {max_length} words in {path}; try --all-pairs")
    return pairs

def split_by_source(pairs, seed, fractions=(0.8, 0.1)):
    """Split 80/10/10 by *distinct source sentence*: "je suis fatigue ." has two translations;
    split by pair, one could be trained on and the other tested, measuring memory, not skill."""
    sources = sorted({" ".join(src) for src, _ in pairs})
    random.Random(seed).shuffle(sources)
    n_train, n_val = int(fractions[0] * len(sources)), int(fractions[1] * len(sources))
    side = {s: (i >= n_train) + (i >= n_train + n_val) for i, s in enumerate(sources)}
    return [[pair for pair in pairs if side[" ".join(pair[0])] == k] for k in range(3)]

def encode(sentences, stoi, device, sos=False, eos=False):
    """Word lists -> (batch, time) ids padded with PAD, and the lengths. Unknown words become
    <unk> (rare ones, typos, English): the old tutorial's word2index[word] raised KeyError."""
    ids = [[SOS] * sos + [stoi.get(w, UNK) for w in s] + [EOS] * eos for s in sentences]
    x = pad_sequence([torch.tensor(i) for i in ids], batch_first=True, padding_value=PAD)
    return x.to(device), torch.tensor([len(i) for i in ids])

# -----------------------------------------------------------------------------
# Model
class Translator(nn.Module):
    """Bidirectional GRU encoder + GRU decoder with multiplicative attention (Luong et al. 2015).
    Decoder state h_t (hidden) scores source position s by its encoder state e_s (2 * hidden):
    score(t, s) = h_t . W e_s; a softmax over s gives weights a(t, s) summing to 1, "how much
    output word t looks at source word s"; the context c_t = sum_s a(t, s) e_s joins h_t to
    predict word t. Without "input feeding" (the last step's attention output fed into this one)
    the decoder runs over the whole target in ONE nn.GRU call, no Python loop over time. Measured
    (defaults, 2 CPU cores): this model 192 s, test BLEU 59.3; with input feeding 248 s, 59.5;
    with Bahdanau's additive score v . tanh(W h_t + U e_s) 200 s, 58.4 (one seed each)."""

    def __init__(self, src_vocab, tgt_vocab, max_length, size, dropout):
        embed_size = hidden_size = size  # one size for both keeps the flags simple
        super().__init__()
        self.src_stoi = {w: i for i, w in enumerate(src_vocab)}
        self.tgt_stoi = {w: i for i, w in enumerate(tgt_vocab)}
        self.tgt_itos, self.max_length = tgt_vocab, max_length  # outputs <= 2 * max_length + 2
        self.src_embed = nn.Embedding(len(src_vocab), embed_size, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(len(tgt_vocab), embed_size, padding_idx=PAD)
        self.encoder = nn.GRU(embed_size, hidden_size, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden_size, hidden_size)  # encoder summary -> decoder h_0
        self.decoder = nn.GRU(embed_size, hidden_size, batch_first=True)
        self.attn = nn.Linear(2 * hidden_size, hidden_size, bias=False)  # the W in h . W e
        self.mix = nn.Linear(3 * hidden_size, embed_size)  # [h_t; c_t] -> attentional state
        self.out = nn.Linear(embed_size, len(tgt_vocab))
        self.out.weight = self.tgt_embed.weight  # tied: output vector = input embedding
        self.drop = nn.Dropout(dropout)

    def encode(self, src, lengths):
        """src: (batch, src_time) ids -> memory for attention, and the decoder's first state."""
        emb = self.drop(self.src_embed(src))  # (batch, src_time, embed)
        # Packed: the backward direction starts at each sentence's last word, not at padding.
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        states, h = self.encoder(packed)  # h: (2 directions, batch, hidden)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.size(1))
        hidden = torch.tanh(self.bridge(torch.cat([h[0], h[1]], dim=1))).unsqueeze(0)
        # states: (batch, src_time, 2 * hidden); keys W e_s are computed once per sentence
        return (states, self.attn(states), src != PAD), hidden  # hidden: (1, batch, hidden)

    def decode(self, tgt, hidden, memory):
        """tgt: (batch, time) ids of the previous words -> logits (batch, time, tgt_vocab)."""
        states, keys, mask = memory
        h, hidden = self.decoder(self.drop(self.tgt_embed(tgt)), hidden)  # (batch, time, hidden)
        scores = h @ keys.transpose(1, 2)  # (batch, time, src_time): score(t, s) = h_t . W e_s
        # Padding is not a word: -inf gives it exactly zero weight after the softmax. The old
        # tutorial padded every sentence to MAX_LENGTH and let attention look at the padding.
        weights = scores.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(dim=-1)
        context = weights @ states  # (batch, time, 2 * hidden)
        mixed = torch.tanh(self.mix(torch.cat([h, context], dim=-1)))  # (batch, time, embed)
        return self.out(self.drop(mixed)), hidden, weights

# -----------------------------------------------------------------------------
# Training
def train(args, model, train_set, val_set, device, save):
    """Teacher forcing (the decoder reads the true previous word, not its guess; the 2017 tutorial
    did so half the time), AdamW, cosine decay, clipping; keep the best validation BLEU."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train_set) / args.batch_size)
    total = min(args.epochs * steps_per_epoch, args.max_steps or float("inf"))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    # Padding costs nothing; label smoothing 0.1 curbs over-confidence on so little data.
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1)
    best, step, start, running = -1.0, 0, time.time(), []
    epochs = math.ceil(total / steps_per_epoch)  # fewer than --epochs if --max-steps cuts in
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train_set)).tolist()  # seeded by torch.manual_seed in main
        for i in range(0, len(order), args.batch_size):
            batch = [train_set[j] for j in order[i:i + args.batch_size]]
            src, lengths = encode([s for s, _ in batch], model.src_stoi, device)
            # "i am ." -> decoder input "<sos> i am ." and target "i am . <eos>"
            tgt, _ = encode([t for _, t in batch], model.tgt_stoi, device, sos=True, eos=True)
            memory, hidden = model.encode(src, lengths)
            logits, _, _ = model.decode(tgt[:, :-1], hidden, memory)
            loss = loss_fn(logits.flatten(0, 1), tgt[:, 1:].flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # tames rare exploding steps
            opt.step()
            sched.step()
            step += 1
            running.append(loss.item())
            if step % args.log_every == 0 or step == total:
                elapsed, mean = time.time() - start, sum(running) / len(running)
                log(f"epoch {epoch}/{epochs} | step {step}/{total} | loss {mean:.4f} | "
                    f"{elapsed:.0f}s elapsed, ETA {elapsed / step * (total - step):.0f}s")
                running = []
            if step == total:
                break
        score = evaluate(model, val_set, device)[0]  # greedy: fast, and ranks epochs fine
        log(f"epoch {epoch}/{epochs} done | val BLEU {score:.1f}{' | saved' * (score >= best)}")
        if score >= best:  # on a tie the later epoch, trained longer at a lower rate, wins
            best = score
            save()

# -----------------------------------------------------------------------------
# Evaluation
@torch.inference_mode()  # no autograd graph recorded; replaces volatile=True Variables
def translate(model, sentences, device, beam=1, batch_size=256):
    """Beam search over batches of sentences (beam=1: greedy). Each sentence keeps `beam` partial
    translations as rows of one (batch * beam) batch; each step extends all by every word and
    keeps the `beam` best log-probabilities over a length penalty (raw sums favour short ones)."""
    model.eval()
    results, k = [], beam
    for i in range(0, len(sentences), batch_size):
        chunk, n = sentences[i:i + batch_size], len(sentences[i:i + batch_size])
        src, lengths = encode(chunk, model.src_stoi, device)
        memory, hidden = model.encode(src, lengths)
        memory = [x.repeat_interleave(k, dim=0) for x in memory]  # k copies of each sentence
        hidden = hidden.repeat_interleave(k, dim=1)
        # the k copies start equal: let only the first one expand at the first step
        score = torch.tensor([0.0] + [float("-inf")] * (k - 1), device=device).repeat(n, 1)
        words = torch.full((n * k, 1), SOS, device=device)  # (n * k, steps so far)
        attn = torch.zeros(n * k, 0, src.size(1), device=device)  # (n * k, steps, src_time)
        length, done = torch.zeros(n * k, device=device), torch.zeros_like(words[:, 0]).bool()
        for _ in range(2 * model.max_length + 2):
            logits, hidden, weights = model.decode(words[:, -1:], hidden, memory)
            logp = logits[:, -1].log_softmax(dim=-1)  # (n * k, vocab)
            logp[:, [PAD, SOS]] = float("-inf")  # no words; but a finished hypothesis...
            logp[done] = float("-inf")
            logp[done, PAD] = 0.0  # ...continues with PAD only, for free
            total, new_length = score.view(-1, 1) + logp, length + ~done
            ranked = total / ((5 + new_length.unsqueeze(1)) / 6) ** ALPHA
            best = ranked.view(n, -1).topk(k, dim=1).indices  # (n, k) among k * vocab
            score = total.view(n, -1).gather(1, best)
            origin = (best // logp.size(1) + k * torch.arange(n, device=device)[:, None]).view(-1)
            word = (best % logp.size(1)).view(-1)  # origin: the row each survivor came from
            words = torch.cat([words[origin], word.unsqueeze(1)], dim=1)
            attn = torch.cat([attn[origin], weights[origin]], dim=1)
            hidden, length = hidden[:, origin], new_length[origin]
            done = done[origin] | (word == EOS) | (word == PAD)
            if done.all():
                break
        for row in range(0, n * k, k):  # hypothesis 0 of each sentence ranks best
            ids = words[row, 1:].tolist() + [EOS]
            out = [model.tgt_itos[j] for j in ids[:ids.index(EOS)] if j != PAD]
            results.append((out, attn[row, :len(out) + 1, :lengths[row // k]].cpu()))
    return results

def bleu(hyps, refs):
    """Corpus BLEU-4 (Papineni et al. 2002) over word lists; refs[i] lists hyps[i]'s references.
    Precision for n = 1..4: the share of the hypothesis' n-grams found in a reference, each
    counted at most as often as in one reference ("the the the" matches "the" once). Their
    geometric mean times a brevity penalty (precision alone rewards saying little) is BLEU.
    Tokens are tokenize()'s, punctuation included: the easy final "." lifts scores a little."""
    ngrams = lambda words, n: Counter(zip(*(words[j:] for j in range(n))))  # noqa: E731
    matched, proposed, hyp_len, ref_len = [0] * 4, [0] * 4, 0, 0
    for hyp, rs in zip(hyps, refs):
        hyp_len += len(hyp)
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in rs)[1]  # closest ref length
        for n in range(1, 5):
            most = Counter()
            for r in rs:
                most |= ngrams(r, n)  # | keeps each n-gram's highest count in one reference
            matched[n - 1] += sum((ngrams(hyp, n) & most).values())  # & clips to that count
            proposed[n - 1] += max(len(hyp) - n + 1, 0)
    if min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / p) for m, p in zip(matched, proposed)) / 4
    return 100 * min(1.0, math.exp(1 - ref_len / hyp_len)) * math.exp(log_precision)

def evaluate(model, pairs, device, beam=1):
    """BLEU, exact matches, outputs; each source scored against ALL its translations."""
    refs = {}
    for src, tgt in pairs:
        refs.setdefault(tuple(src), []).append(tgt)
    sources = list(refs)
    outputs = translate(model, [list(s) for s in sources], device, beam)
    exact = sum(out in refs[s] for (out, _), s in zip(outputs, sources)) / len(sources)
    return bleu([out for out, _ in outputs], list(refs.values())), exact, sources, outputs, refs

def heatmap(src, out, attn):
    """Draw attention as text: one row per output word, one column per source word."""
    shades = " .:-=+*#%@"  # darker = more weight
    widths, side = [max(len(w), 2) for w in src], max(len(w) for w in out + ["<eos>"]) + 1
    log(" " * side + " ".join(w.ljust(n) for w, n in zip(src, widths)))
    for word, row in zip(out + ["<eos>"], attn.tolist()):
        log(word.ljust(side) + " ".join(shades[round(9 * a)] * n for a, n in zip(row, widths)))

def report(model, test_set, device, beam):
    """Test BLEU and exact match with the best checkpoint, examples, one attention map."""
    score, exact, sources, outputs, refs = evaluate(model, test_set, device, beam)
    log(f"\ntest: {len(sources)} source sentences | BLEU-4 {score:.1f} | exact match "
        f"{exact:.1%} | beam {beam}\n(> source, = references, < model)\n")
    picks = random.Random(0).sample(range(len(sources)), min(6, len(sources)))
    for i in picks:
        log(f"> {' '.join(sources[i])}\n= {' | '.join(' '.join(r) for r in refs[sources[i]])}"
            f"\n< {' '.join(outputs[i][0])}\n")
    log("attention of the first example (rows: output words, columns: source words):")
    heatmap(list(sources[picks[0]]), *outputs[picks[0]])

# -----------------------------------------------------------------------------
# Command line
def pick_device(name):
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if name == "auto":
        name = next((d for d in ("cuda", "mps") if available[d]), "cpu")
    elif name != "cpu" and not available[name]:
        sys.exit(f"error: --device {name} is not available here; use --device cpu or auto")
    return torch.device(name)

def load_checkpoint(path, device):
    if not path.is_file():
        sys.exit(f"error: no checkpoint at {path}; train one first: python {HERE.name}/train.py")
    try:  # weights_only=True: only tensors and plain containers, a foreign file runs no code
        state = torch.load(path, map_location=device, weights_only=True)
        if (kind := state.get("kind")) == KIND:
            model = Translator(state["src_vocab"], state["tgt_vocab"], **state["config"])
            model.load_state_dict(state["model"])
            return model.to(device)
    except Exception as e:  # not a torch file, not a dict, missing keys, other sizes...
        sys.exit(f"error: {path} is not a usable checkpoint ({type(e).__name__}); retrain it")
    sys.exit(f"error: {path} is a {kind or 'foreign'} checkpoint, not {KIND}")

def translate_command(model, lines, device, beam, show_attention):
    """One output line per input line, same order; an empty input line gives an empty line."""
    sentences = [tokenize(line) for line in lines]
    if unknown := sorted({w for s in sentences for w in s} - model.src_stoi.keys()):
        log(f"note: words not in the vocabulary, read as <unk>: {' '.join(unknown)}")
    outputs = iter(translate(model, [s for s in sentences if s], device, beam))
    for s in sentences:
        out, attn = next(outputs) if s else ([], None)
        print(" ".join(out), flush=True)
        if s and show_attention:
            heatmap(s, out, attn)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument
    add("--translate", nargs="+", metavar="SENTENCE", help="translate these ('-': stdin lines)")
    add("--show-attention", action="store_true", help="with --translate, draw attention (stderr)")
    add("--data-dir", type=Path, default=HERE.parent / "data", help="folder with eng-fra.txt")
    add("--checkpoint", type=Path, default=HERE / "model.pt", help="where the model is saved")
    add("--device", default="auto", choices="auto cpu cuda mps".split(), help="auto: cuda>mps>cpu")
    add("--seed", type=int, default=0, help="seed for the split, the weights and the batches")
    add("--reverse", action="store_true", help="translate English to French instead")
    add("--all-pairs", action="store_true", help="keep all pairs, not only 'i am', 'he is', ...")
    add("--max-length", type=int, default=10, help="longest sentence kept, in words")
    add("--min-count", type=int, default=2, help="rarer training words become <unk>")
    add("--epochs", type=int, default=14, help="passes over the training pairs")
    add("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    add("--batch-size", type=int, default=64, help="sentence pairs per optimisation step")
    add("--lr", type=float, default=3e-3, help="peak learning rate of AdamW")
    add("--size", type=int, default=192, help="word vector and GRU state size (per direction)")
    add("--dropout", type=float, default=0.2, help="dropout on embeddings and outputs")
    add("--beam", type=int, default=4, help="beam size for the test and --translate")
    add("--log-every", type=int, default=50, help="print a progress line every N steps")
    args = p.parse_args(argv)
    if min(args.max_length, args.min_count, args.epochs, args.batch_size, args.beam, args.size,
           args.log_every) < 1 or args.max_steps < 0 or not 0 <= args.dropout < 1 \
            or not 0 < args.lr < math.inf or not args.checkpoint.name:
        sys.exit("error: need sizes, counts >= 1, --max-steps >= 0, 0 <= --dropout < 1, --lr > 0")
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    if args.translate:
        model = load_checkpoint(args.checkpoint, device)
        getattr(sys.stdin, "reconfigure", lambda **_: None)(errors="replace")  # odd bytes: no crash
        lines = sys.stdin.read().splitlines() if args.translate == ["-"] else args.translate
        return translate_command(model, lines, device, args.beam, args.show_attention)
    pairs = read_pairs(args.data_dir, args.max_length, args.all_pairs, args.reverse)
    train_set, val_set, test_set = split_by_source(pairs, args.seed)
    if not (val_set and test_set):
        sys.exit(f"error: {len({tuple(s) for s, _ in pairs})} distinct sources; need 10 or more")
    # Vocabularies from the training split only: held-out words must be unknown, as in use.
    vocabs = [SPECIALS + sorted(w for w, c in Counter(w for pair in train_set for w in pair[side])
                                .items() if c >= args.min_count) for side in (0, 1)]
    log(f"{len(pairs)} pairs | train {len(train_set)}, val {len(val_set)}, test {len(test_set)} "
        f"| vocab {len(vocabs[0])} source, {len(vocabs[1])} target words | device {device}")
    config = {"max_length": args.max_length, "size": args.size, "dropout": args.dropout}
    model, tmp = Translator(*vocabs, **config).to(device), args.checkpoint.with_suffix(".tmp")
    saved = []  # so that Ctrl-C never claims a model this run did not write
    def save():  # to a temporary file, then renamed: Ctrl-C never leaves a half-written file
        args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"kind": KIND, "config": config, "model": model.state_dict(),
                    "src_vocab": vocabs[0], "tgt_vocab": vocabs[1]}, tmp)
        os.replace(tmp, args.checkpoint)
        saved.append(True)
    try:
        train(args, model, train_set, val_set, device, save)
    except KeyboardInterrupt:
        log(f"\ninterrupted: the best model so far is at {args.checkpoint}" if saved
            else "\ninterrupted before the first epoch ended: nothing was saved")
        sys.exit(130)
    except OSError as e:  # only save() writes files during training
        sys.exit(f"error: cannot write {args.checkpoint} ({e.strerror}); pass another --checkpoint")
    report(load_checkpoint(args.checkpoint, device), test_set, device, args.beam)  # best epoch
    log(f"\nsaved {args.checkpoint}")


if __name__ == "__main__":
    main()
