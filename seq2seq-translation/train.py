"""Translate French to English (or your own pairs) with a GRU encoder-decoder and attention.

The encoder, a GRU run both ways, gives each source word a state e_s that has read the whole
sentence; the bridge, a linear layer and tanh, turns the encoder's last states into h_0.
The decoder, a GRU over the English so far, gives a state h_t per position t; attention reads a
context from the e_s for it, and the mix and output layers score every word as the next one:
    "je suis mouille ." -> encoder -> e_1 .. e_4 (keys, values);  bridge -> h_0
    "<sos> i 'm wet ."  -> decoder -> h_1 .. h_5 -> attention, mix, output -> "i 'm wet . <eos>"
    python seq2seq-translation/train.py       # train, print test BLEU-4 and an attention map
    python seq2seq-translation/train.py --translate "je suis content ." "il est en retard ."
"""

import argparse
import io
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
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from unidecode import unidecode

KIND = "seq2seq-translation"  # stored in each checkpoint
DATA_URL = os.environ.get("PRACTICAL_PYTORCH_DATA_URL",
                          "https://download.pytorch.org/tutorial/data.zip")
HERE = Path(__file__).resolve().parent
SPECIALS = ["<pad>", "<sos>", "<eos>", "<unk>"]
PAD, SOS, EOS, UNK = range(4)  # their ids in both vocabularies
PREFIXES = ("i am ", "i 'm ", "he is", "he 's ", "she is", "she 's ", "you are", "you 're ",
            "we are", "we 're ", "they are", "they 're ")  # the 2017 subset
DROPOUT = 0.1  # in training, zero each embedding and output number at this rate
WEIGHT_DECAY = 0.1  # AdamW's decay rate (train())
GRAD_CLIP = 1.0  # the largest joint gradient norm a step may use (train())
LABEL_SMOOTHING = 0.1  # the target's share spread over all words (train())
SIZE = 160  # embeddings and GRU states per direction (an e_s has both: 2 * SIZE)
HEADS = 4  # attention heads, each comparing its own SIZE / HEADS numbers
MAX_WORDS = 10  # pairs with more words on a side are left out
ALPHA = 0.6  # beam_search() answers with the row of best sum / length ** ALPHA
MARGIN = 10  # an output may have 2 * (source words) + MARGIN words, then it is cut
CHUNK = 1024  # rows (sentences x beam) decoded at once, to bound memory; one sentence at least

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

def tokenize(text):
    """ASCII, lower case, punctuation apart; an apostrophe starts a word: "J'ai" -> j 'ai."""
    return re.findall(r"'?[a-z0-9]+|[^\sa-z0-9]", unidecode(text).lower())

def read_pairs(path, reverse, all_pairs):
    """(source, target) word lists from English<TAB>other lines (reverse: English the source)."""
    pairs = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = [tokenize(field) for field in line.split("\t")[:2]]
        if len(fields) == 2 and all(fields) and max(map(len, fields)) <= MAX_WORDS:
            if all_pairs or " ".join(fields[0]).startswith(PREFIXES):
                pair = fields if reverse else fields[::-1]  # (source, target)
                pairs.append(pair)
    if len({tuple(source) for source, _ in pairs}) < 10:  # for 80/10/10
        sys.exit(f"error: under 10 distinct short sentences in {path}; see --all-pairs")
    return pairs

def split_by_source(pairs, seed):
    """80/10/10 by distinct source sentence: a sentence trained on with one translation, then
    tested with another, would test memory (Tatoeba often translates a sentence several ways)."""
    sources = sorted({" ".join(source) for source, _ in pairs})
    random.Random(seed).shuffle(sources)
    n_train = int(0.8 * len(sources))
    n_val = int(0.9 * len(sources))
    sides = [set(sources[:n_train]), set(sources[n_train:n_val]), set(sources[n_val:])]
    return [[pair for pair in pairs if " ".join(pair[0]) in side] for side in sides]

def build_vocab(sentences):
    return SPECIALS + sorted({word for sentence in sentences for word in sentence})  # else <unk>

def encode(sentences, stoi, device, start=(), end=()):
    rows = [torch.tensor([*start, *(stoi.get(w, UNK) for w in s), *end]) for s in sentences]
    ids = pad_sequence(rows, batch_first=True, padding_value=PAD)  # (B sentences, T words)
    return ids.to(device), torch.tensor([len(row) for row in rows])  # CPU lengths, for packing

# --- Model -------------------------------------------------------------------
class Translator(nn.Module):
    """The picture at the top. No Python loop over time in training: attention is never fed back
    into the decoder's GRU, which reads only the previous target words, all known in training, so
    one call runs every position. Weight tying: the output layer's weights are the target
    embedding: a word's score is its embedding's dot product with the mix layer's output, plus a
    bias. <pad>'s row gets no gradient as an input (padding_idx) but still trains as an output."""
    def __init__(self, src_vocab, tgt_vocab, size=SIZE):
        super().__init__()
        self.config = dict(src_vocab=src_vocab, tgt_vocab=tgt_vocab, size=size)
        self.src_stoi = {w: i for i, w in enumerate(src_vocab)}  # word -> id
        self.tgt_stoi = {w: i for i, w in enumerate(tgt_vocab)}
        self.src_embed = nn.Embedding(len(src_vocab), size, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(len(tgt_vocab), size, padding_idx=PAD)
        nn.init.zeros_(self.src_embed.weight[UNK])  # no training word is <unk>
        self.encoder = nn.GRU(size, size, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * size, size)  # last states -> h_0
        self.decoder = nn.GRU(size, size, batch_first=True)
        self.query = nn.Linear(size, size)  # h_t -> its query
        self.key = nn.Linear(2 * size, size)  # e_s -> its key
        self.value = nn.Linear(2 * size, size)  # e_s -> its value
        self.mix = nn.Linear(2 * size, size)  # [h_t; context] -> size: the heads' output projection
        self.out = nn.Linear(size, len(tgt_vocab))  # logits: a score per word
        self.out.weight = self.tgt_embed.weight  # weight tying
        self.drop = nn.Dropout(DROPOUT)

    def run_encoder(self, src, lengths):
        # Packed, the GRU skips padding both ways: no e_s and no last state (the bridge's) reads it.
        emb = self.drop(self.src_embed(src))  # (B, S, size) from src (B, S)
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        states, last = self.encoder(packed)  # last: (2 directions, B, size)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.size(1))
        hidden = torch.tanh(self.bridge(torch.cat([last[0], last[1]], dim=1)))  # (B, size)
        # Keys and values, once per sentence; head k gets its k-th slice of d = size / HEADS.
        keys = self.key(states).unflatten(-1, (HEADS, -1)).transpose(1, 2)  # (B, HEADS, S, d)
        values = self.value(states).unflatten(-1, (HEADS, -1)).transpose(1, 2)  # (B, HEADS, S, d)
        return (keys, values, src != PAD), hidden.unsqueeze(0)  # mask (B, S), (1, B, size)

    def run_decoder(self, prev, hidden, keys, values, mask):
        """The GRU, then multi-head scaled dot-product attention: the query from h_t is scored
        against each source word's key (what the word is matched by), and the softmax of the
        scores weighs the words' values (what is read from them) into the context. Padding gets
        score -inf (weight 0), or a short sentence would read its batch's padding. Each head
        compares its own d numbers, so one may follow the subject and another the verb, where one
        weighted mean would blend them. Scores are divided by sqrt(d): the dot product of two
        vectors of d independent numbers of mean 0 and spread (standard deviation) 1 has spread
        sqrt(d), and large scores push the softmax onto one word, with vanishing gradients. Fused:
        nn.MultiheadAttention (key_padding_mask=~mask: True = ignore), or, on the split heads,
        F.scaled_dot_product_attention (attn_mask=mask[:, None, None, :]: True = attend)."""
        h, hidden = self.decoder(self.drop(self.tgt_embed(prev)), hidden)  # (B, T, size)
        query = self.query(h).unflatten(-1, (HEADS, -1)).transpose(1, 2)  # (B, HEADS, T, d)
        scores = query @ keys.transpose(2, 3) / math.sqrt(query.size(-1))  # (B, HEADS, T, S)
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)  # (B, HEADS, T, S), each row sums to 1
        context = (weights @ values).transpose(1, 2).flatten(2)  # (B, T, size): heads side by side
        mixed = torch.tanh(self.mix(torch.cat([h, context], dim=-1)))  # (B, T, size)
        return self.drop(mixed), hidden, weights.mean(dim=1)  # heads' mean (B, T, S)

# --- Training ----------------------------------------------------------------
def train(args, model, train_set, val_set, device, save):
    """Teacher forcing: the decoder reads the true previous word, not its own guess, so one call
    trains every position. Its cost, exposure bias: the model never practised going on after its
    own mistakes. AdamW: Adam (each weight's step sized by its recent gradients) plus weight decay,
    shrinking each weight by lr * WEIGHT_DECAY of itself outside Adam's sizing: less overfitting."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=WEIGHT_DECAY, fused=True)
    steps_per_epoch = math.ceil(len(train_set) / args.batch_size)
    total_steps = min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
    epochs = math.ceil(total_steps / steps_per_epoch)  # fewer if --max-steps cuts
    # The learning rate falls to 0 along a half cosine: big steps early, fine ones at the end.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    # Label smoothing: the target is 0.9 on the true word and 0.1 spread over all words, so the
    # model isn't pushed to certainty: the logged loss is 0.9 NLL (-log p[true]) + 0.1 mean(-log p).
    loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    batch_order = torch.Generator().manual_seed(args.seed)
    best_bleu = -1.0
    step = 0
    start = time.time()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train_set), generator=batch_order).tolist()
        order.sort(key=lambda j: len(train_set[j][0]))  # like lengths share a batch
        batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        for k in torch.randperm(len(batches), generator=batch_order)[:total_steps - step].tolist():
            # "i 'm wet ." -> decoder input "<sos> i 'm wet ." and target "i 'm wet . <eos>"
            batch = [train_set[j] for j in batches[k]]
            src, lengths = encode([s for s, _ in batch], model.src_stoi, device)
            tgt, _ = encode([t for _, t in batch], model.tgt_stoi, device, (SOS,), (EOS,))

            # forward and loss, at every real target position at once (the padding left out)
            memory, hidden = model.run_encoder(src, lengths)
            features, _, _ = model.run_decoder(tgt[:, :-1], hidden, *memory)
            real = tgt[:, 1:] != PAD  # (B, T)
            loss = loss_fn(model.out(features[real]), tgt[:, 1:][real])

            # backward and update, all gradients scaled down together to a norm <= GRAD_CLIP
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            opt.step()
            sched.step()
            step += 1

            if step % args.log_every == 0 or step == total_steps:  # log
                log(f"epoch {epoch}/{epochs} | step {step}/{total_steps} | loss {loss.item():.4f} "
                    f"| ETA {(time.time() - start) / step * (total_steps - step):.0f}s")
        if not math.isfinite(loss.item()):  # diverged: no later epoch can recover
            sys.exit(f"error: the loss became {loss.item()}; try a lower --lr")
        val_bleu, _, _ = evaluate(model, val_set, device)  # greedy: cheap
        if val_bleu > best_bleu:  # a tie keeps the earlier one
            best_bleu = val_bleu
            save(model)
        log(f"epoch {epoch}/{epochs} done | val BLEU {val_bleu:.1f} | best {best_bleu:.1f}")

# --- Evaluation --------------------------------------------------------------
@torch.inference_mode()  # no autograd graph
def beam_search(model, sentences, device, beam):
    """Each sentence keeps its `beam` best partial translations (rows): each step extends every
    row by every word and keeps the `beam` best by their sum of log-probabilities. Beam 1 is
    greedy decoding: one row, extended by its likeliest word. A row that ended (<eos>, or its
    length limit) stays, adding <pad> at no cost. Each word lowers a sum, so raw sums favour
    short outputs: at the end each sentence answers with its row of best sum / length ** ALPHA,
    which shrinks a long row's sum more: the raw sum at ALPHA = 0, the mean per word at 1.
        sentence:  0  0  0 | 1  1  1      2 sentences, beam = 3: one batch of rows,
        row:       0  1  2 | 3  4  5      row r belongs to sentence r // 3"""
    model.eval()
    src, lengths = encode(sentences, model.src_stoi, device)  # (N, S), (N,)
    memory, hidden = model.run_encoder(src, lengths)
    # N sentences, K = beam, R = N * K rows, S source words, T written, V target words
    n = len(sentences)
    memory = [m.repeat_interleave(beam, dim=0) for m in memory]  # R rows first
    hidden = hidden.repeat_interleave(beam, dim=1)  # (1, R, size)
    limit = (2 * lengths + MARGIN).repeat_interleave(beam).to(device)  # (R,)
    logp_sum = torch.full((n, beam), -math.inf, device=device)  # (N, K)
    logp_sum[:, 0] = 0.0  # all K rows are "<sos>": only row 0 may grow, or K copies would win
    words = torch.full((n * beam, 1), SOS, device=device)  # (R, T + 1)
    done = torch.zeros(n * beam, dtype=torch.bool, device=device)  # (R,)
    while not done.all():  # at most 2 * (longest source) + MARGIN steps
        features, hidden, _ = model.run_decoder(words[:, -1:], hidden, *memory)
        logp = model.out(features[:, -1]).log_softmax(dim=-1)  # (R, V)
        vocab = logp.size(1)
        logp[:, [PAD, SOS, UNK]] = float("-inf")  # never written
        logp[done] = float("-inf")  # an ended row may only add <pad>, at no cost
        logp[done, PAD] = 0.0
        # Lay a sentence's K * V candidates in one row: index j is row j // V plus word j % V.
        candidates = (logp_sum.view(-1, 1) + logp).view(n, beam * vocab)  # (N, K * V)
        logp_sum, top = candidates.topk(beam)  # (N, K) each, best first
        parent = (beam * torch.arange(n, device=device)[:, None] + top // vocab).view(-1)  # (R,)
        word = (top % vocab).view(-1)  # (R,): the word each adds
        words = torch.cat([words[parent], word.unsqueeze(1)], dim=1)  # (R, T + 2)
        hidden = hidden[:, parent]  # (1, R, size); memory and limit are the same for a sentence
        length = (words[:, 1:] != PAD).sum(dim=1)  # (R,), <eos> included
        done = done[parent] | (word == EOS) | (length >= limit)  # (R,)
    score = logp_sum / length.view(n, beam) ** ALPHA  # (N, K)
    return words.view(n, beam, -1)[torch.arange(n), score.argmax(dim=1), 1:].tolist()  # (N, T)

def translate(model, sentences, device, beam=1):
    order = sorted((i for i, s in enumerate(sentences) if s), key=lambda i: len(sentences[i]))
    step = max(1, CHUNK // beam)  # sentences per chunk: CHUNK rows bound the memory
    outputs = [[] for _ in sentences]  # in input order; empty stays empty
    for chunk in [order[k:k + step] for k in range(0, len(order), step)]:
        for i, row in zip(chunk, beam_search(model, [sentences[i] for i in chunk], device, beam)):
            outputs[i] = [model.config["tgt_vocab"][j] for j in row if j > EOS]  # no <eos>, <pad>
    return outputs

def bleu(hyps, refs):
    """Corpus BLEU-4 of hypotheses (translations) against references: for n = 1..4, the share of
    hypothesis n-grams (runs of n words) found in a reference, counted at most as often as one
    reference has it, summed over the corpus; their geometric mean, times a brevity penalty, as
    precision alone rewards saying little: exp(1 - r / h) if the h words are under the r of the
    reference closest in length (Papineni et al. 2002)."""
    matched = [0] * 4  # for n = 1..4: hypothesis n-grams found in a reference
    proposed = [0] * 4  # for n = 1..4: all hypothesis n-grams
    hyp_length = ref_length = 0
    for hyp, hyp_refs in zip(hyps, refs):
        hyp_length += len(hyp)
        ref_length += min((abs(len(r) - len(hyp)), len(r)) for r in hyp_refs)[1]
        for n in range(1, 5):
            grams = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            most = Counter()  # each n-gram's highest count in one reference
            for r in hyp_refs:
                most |= Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))  # |: the max
            matched[n - 1] += sum((grams & most).values())  # &: the min
            proposed[n - 1] += sum(grams.values())
    if min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / p) for m, p in zip(matched, proposed)) / 4
    return 100 * min(1.0, math.exp(1 - ref_length / hyp_length)) * math.exp(log_precision)

def evaluate(model, pairs, device, beam=1):
    refs = {}
    for src, tgt in pairs:
        refs.setdefault(tuple(src), []).append(tgt)
    outputs = translate(model, list(refs), device, beam)
    return bleu(outputs, list(refs.values())), list(refs), outputs  # vs all refs

def report(model, test_set, device, beam):
    """Test BLEU, then one test sentence's attention, the heads' mean (denser: read more). A weight
    says where a word took information from, not which word it translates: each e_s has read the
    whole sentence, so one word's information can be read from another word's state."""
    score, sources, outputs = evaluate(model, test_set, device, beam)
    log(f"\ntest: {len(sources)} source sentences | BLEU-4 {score:.1f} | beam {beam}\n")
    src, lengths = encode(sources[:1], model.src_stoi, device)
    prev, _ = encode(outputs[:1], model.tgt_stoi, device, (SOS,))
    with torch.inference_mode():  # one decoder call over the translation
        memory, hidden = model.run_encoder(src, lengths)
        _, _, weights = model.run_decoder(prev, hidden, *memory)  # (1, words + 1, S)
    width = max(len(w) for w in ["", *sources[0], *outputs[0]])  # one width for all
    log(" ".join(w.ljust(width) for w in ["", *sources[0]]))
    for word, row in zip(outputs[0], weights[0].tolist()):
        log(" ".join([word.ljust(width)] + [" .:-=+*#%@"[round(9 * a)] * width for a in row]))

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
        model = Translator(**state["config"])
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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.error = lambda message: p.exit(2, f"error: {message}\n")  # one line, no usage
    add = p.add_argument
    add("--data-dir", type=Path, default=HERE.parent / "data", help="where eng-fra.txt is")
    add("--pairs", type=Path, metavar="FILE", help="English<TAB>other language lines, not eng-fra")
    add("--reverse", action="store_true", help="translate English into the other language")
    add("--all-pairs", action="store_true", help="every short pair, not only 'i am ...'")
    add("--checkpoint", type=Path, default=HERE / "model.pt", help="the model file")
    add("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
        help="auto: cuda if present, else cpu; mps (untested) only if asked")
    add("--seed", type=int, default=0, help="seeds the split, the weights and the batch order")
    add("--epochs", type=int, default=18, help="passes over the training pairs")
    add("--max-steps", type=int, default=0, help="stop after N steps (0: no limit)")
    add("--batch-size", type=int, default=64, help="sentence pairs per step")
    add("--lr", type=float, default=5e-3, help="peak learning rate of AdamW")
    add("--log-every", type=int, default=50, help="print progress every N steps")
    add("--translate", nargs="+", metavar="TEXT", help="one quoted sentence each ('-': stdin)")
    add("--beam", type=int, default=4, help="beam size (1: greedy)")
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    log(f"device {device}")
    torch.manual_seed(args.seed)  # the initial weights and dropout
    try:  # one boundary for the whole run: a file or the network fails as an OSError (below)
        if args.translate:  # one line out per line in, an empty one for an empty one
            model = load_checkpoint(args.checkpoint, device)
            sys.stdin.reconfigure(errors="replace")  # odd bytes read as U+FFFD
            lines = sys.stdin.read().splitlines() if args.translate == ["-"] else args.translate
            for words in translate(model, [tokenize(line) for line in lines], device, args.beam):
                print(" ".join(words).replace(" '", "'"))  # "i 'm" printed as "i'm"
            return
        path = args.pairs or args.data_dir / "eng-fra.txt"
        if not args.pairs and not path.exists():  # only the default downloads
            download(args.data_dir)
        pairs = read_pairs(path, args.reverse, args.all_pairs)
        train_set, val_set, test_set = split_by_source(pairs, args.seed)
        src_vocab = build_vocab([s for s, _ in train_set])
        tgt_vocab = build_vocab([t for _, t in train_set])
        log(f"{len(pairs)} pairs from {path.name} | train {len(train_set)}, val {len(val_set)}, "
            f"test {len(test_set)} | vocab {len(src_vocab)} source, {len(tgt_vocab)} target words")
        model = Translator(src_vocab, tgt_vocab).to(device)
        train(args, model, train_set, val_set, device, partial(save_checkpoint, args.checkpoint))
        report(load_checkpoint(args.checkpoint, device), test_set, device, args.beam)
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
