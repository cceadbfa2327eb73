"""Translate French to English (or your own pairs) with a GRU encoder-decoder and attention.

The encoder, a GRU run both ways over the source, gives each source word a state e_s: the word
in the context of its whole sentence. The bridge, a linear layer, makes the decoder's first
state h_0 from the encoder's last state in each direction. The decoder, a GRU over the English
words so far, gives a state h_t at each position t. Attention compares the query W h_t (W, a
learned matrix) with each e_s and reads a weighted mix of them, the context; the mix layer
joins [h_t; context], and the output layer scores every English word as the next one:
    "je suis mouille ." -> encoder -> e_1 .. e_4 (attention's keys and values); bridge -> h_0
    "<sos> i 'm wet ."  -> decoder -> h_1 .. h_5 -> attention, mix, output -> "i 'm wet . <eos>"
    python seq2seq-translation/train.py       # train, print test BLEU-4 and an attention map
    python seq2seq-translation/train.py --translate "je suis content ." "il est en retard ."
    python seq2seq-translation/train.py --pairs deu-eng.txt --reverse   # English into German
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

KIND = "seq2seq-translation"  # stored in each checkpoint, checked on load
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
SIZE = 160  # the embeddings' and the GRU states' size
HEADS = 4  # --attention multihead: heads, each comparing SIZE / HEADS numbers
MAX_WORDS = 10  # pairs with more words on a side are left out
ALPHA = 1.0  # length penalty strength (beam_search()): 0 ranks by raw sum; more favours longer
MARGIN = 10  # an output may have 2 * (source words) + MARGIN words, then it is cut
CHUNK = 1024  # rows (sentences x beam) decoded at once, which bounds the memory

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

def tokenize(text):
    """ASCII, lower case, punctuation apart; an apostrophe starts a word: "J'ai" -> j 'ai."""
    return re.findall(r"'?[a-z0-9]+|[^\sa-z0-9]", unidecode(text).lower())

def read_pairs(path, reverse, all_pairs):
    """(source, target) word lists from English<TAB>other lines; English is the target unless
    `reverse`. More columns (Tatoeba's attribution) are ignored."""
    pairs = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = [tokenize(field) for field in line.split("\t")[:2]]
        if len(fields) == 2 and all(fields) and max(map(len, fields)) <= MAX_WORDS:
            if all_pairs or " ".join(fields[0]).startswith(PREFIXES):
                pair = fields if reverse else fields[::-1]  # (source, target)
                pairs.append(pair)
    if len({tuple(source) for source, _ in pairs}) < 10:  # the split needs 10 to fill 80/10/10
        sys.exit(f"error: under 10 distinct sentences of <= {MAX_WORDS} words a side in {path}; "
                 "see --all-pairs")
    return pairs

def split_by_source(pairs, seed):
    """80/10/10 by *distinct* source sentence: Tatoeba often translates one sentence several
    ways, and a test sentence trained on with another translation would test memory."""
    sources = sorted({" ".join(source) for source, _ in pairs})
    random.Random(seed).shuffle(sources)
    n_train = int(0.8 * len(sources))
    n_val = int(0.9 * len(sources))
    sides = [set(sources[:n_train]), set(sources[n_train:n_val]), set(sources[n_val:])]
    return [[pair for pair in pairs if " ".join(pair[0]) in side] for side in sides]

def build_vocab(sentences):
    """The specials, then every word of the training split; any other word reads as <unk>."""
    return SPECIALS + sorted({word for sentence in sentences for word in sentence})

def encode(sentences, stoi, device, start=(), end=()):
    rows = [torch.tensor([*start, *(stoi.get(w, UNK) for w in s), *end]) for s in sentences]
    ids = pad_sequence(rows, batch_first=True, padding_value=PAD)  # (B, T)
    return ids.to(device), torch.tensor([len(row) for row in rows])  # lengths: CPU, for packing

# --- Model -------------------------------------------------------------------
class Translator(nn.Module):
    """The picture at the top (Luong et al. 2015). Training needs no Python loop over time:
    attention comes after the decoder's GRU and is never fed back into it, so the GRU reads only
    the previous target words, all known in training, and one call runs every position. Weight
    tying: the output layer's weights are the target embedding, so a word's score is the dot
    product of the mix layer's output with its embedding, plus a bias: one matrix learns from
    reading and from predicting each word. padding_idx keeps <pad>'s row out of the embedding's
    gradient, but it still trains as an output, a word the model learns never to predict."""
    def __init__(self, src_vocab, tgt_vocab, attention, size=SIZE):
        super().__init__()
        self.config = dict(src_vocab=src_vocab, tgt_vocab=tgt_vocab, size=size, attention=attention)
        self.src_stoi = {w: i for i, w in enumerate(src_vocab)}  # word -> id
        self.tgt_stoi = {w: i for i, w in enumerate(tgt_vocab)}
        self.src_embed = nn.Embedding(len(src_vocab), size, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(len(tgt_vocab), size, padding_idx=PAD)
        # The source <unk> row starts at zero: no training word is <unk>, so it never trains.
        nn.init.zeros_(self.src_embed.weight[UNK])
        self.encoder = nn.GRU(size, size, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * size, size)  # last states -> h_0
        self.decoder = nn.GRU(size, size, batch_first=True)
        # multihead: HEADS heads with their own projections, each free to attend elsewhere
        if attention == "luong":
            self.attn = nn.Linear(size, 2 * size, bias=False)  # the query W h_t
        else:  # its keys and values are the e_s, of 2 * size numbers each
            self.attn = nn.MultiheadAttention(size, HEADS, kdim=2 * size, vdim=2 * size,
                                              batch_first=True)
        context_size = 2 * size if attention == "luong" else size
        self.mix = nn.Linear(size + context_size, size)  # [h_t; context] -> size
        self.out = nn.Linear(size, len(tgt_vocab))  # logits: a score per word
        self.out.weight = self.tgt_embed.weight  # weight tying
        self.drop = nn.Dropout(DROPOUT)

    def run_encoder(self, src, lengths):
        # Packed, the GRU skips padding: each direction's last state, which the bridge reads, is at
        # a real word. Unpacked, the backward GRU would start on padding and the forward end on it.
        emb = self.drop(self.src_embed(src))  # (B, S, size) from src (B, S)
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        states, last = self.encoder(packed)  # last: (2 directions, B, size)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.size(1))
        hidden = torch.tanh(self.bridge(torch.cat([last[0], last[1]], dim=1)))
        return (states, src != PAD), hidden.unsqueeze(0)  # (B, S, 2 * size), (B, S), (1, B, size)

    def run_decoder(self, prev, hidden, states, mask, need_weights=True):
        h, hidden = self.decoder(self.drop(self.tgt_embed(prev)), hidden)  # (B, T, size)
        if isinstance(self.attn, nn.Linear):
            context, weights = attend(self.attn(h), states, states, mask)
        else:  # beware: its key_padding_mask is True where attention must ignore
            context, weights = self.attn(h, states, states, key_padding_mask=~mask,
                                         need_weights=need_weights)  # (B, T, size)
        mixed = torch.tanh(self.mix(torch.cat([h, context], dim=-1)))
        return self.drop(mixed), hidden, weights  # weights: (B, T, S)

def attend(query, keys, values, mask):
    """Each query scores every key; the softmax of the scores weighs the values into a context.
    Here query = W h_t, keys = values = the encoder states e_s: which source words matter for
    the next word? Padding is masked (score -inf, weight 0), or a short sentence would read its
    batch's padding. Multi-head attention divides scores by sqrt(d): a dot product of d numbers
    grows like sqrt(d), and large scores push the softmax onto one word, with tiny gradients.
    Luong's paper has no such factor; its learned W sets the scale. In production,
    F.scaled_dot_product_attention(query, keys, values, attn_mask=mask[:, None], scale=1.0)
    is the same; both masks: True = may attend."""
    scores = query @ keys.transpose(1, 2)  # (B, T, S) from (B, T, d) and (B, S, d)
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))  # (B, T, S)
    weights = scores.softmax(dim=-1)  # (B, T, S), rows sum to 1
    return weights @ values, weights  # context (B, T, d_v) from values (B, S, d_v)

# --- Training ----------------------------------------------------------------
def train(args, model, train_set, val_set, device, save):
    """Teacher forcing: the decoder reads the true previous word, not its own guess, so one call
    trains every position (see Translator). Its cost, exposure bias: in use the model reads its
    own guesses, and it never practised going on after a mistake. AdamW: Adam (each weight's
    step sized by its recent gradients) plus weight decay, which shrinks every weight by
    lr * WEIGHT_DECAY of itself outside Adam's sizing: small weights fit less noise."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=WEIGHT_DECAY, fused=True)
    steps_per_epoch = math.ceil(len(train_set) / args.batch_size)
    total_steps = min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
    epochs = math.ceil(total_steps / steps_per_epoch)  # fewer if --max-steps cuts
    # The learning rate falls to 0 along a half cosine: big steps early, fine ones at the end.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    # Label smoothing: the target is 0.9 on the true word plus 0.1 spread over all V words, so
    # the model is not pushed to certainty. The logged loss (one batch, dropout on) is thus
    # 0.9 NLL + 0.1 mean(-log p over all words): above the NLL unless p(true word) < 1 / V.
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
            features, _, _ = model.run_decoder(tgt[:, :-1], hidden, *memory, need_weights=False)
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
                seconds = time.time() - start
                log(f"epoch {epoch}/{epochs} | step {step}/{total_steps} | loss {loss.item():.4f} "
                    f"| {seconds:.0f}s elapsed, ETA {seconds / step * (total_steps - step):.0f}s")
        if not math.isfinite(loss.item()):  # diverged: no later epoch can recover
            sys.exit(f"error: the loss became {loss.item()}; try a lower --lr")
        # Greedy decoding of the validation split is cheap next to an epoch of training, so every
        # epoch is validated and the best one saved: from the first epoch on, a model is on disk.
        val_bleu, _, _ = evaluate(model, val_set, device)
        if val_bleu > best_bleu:  # strictly: on a tie, the earlier checkpoint stays
            best_bleu = val_bleu
            save(model)
        log(f"epoch {epoch}/{epochs} done | val BLEU {val_bleu:.1f} | best {best_bleu:.1f}")

# --- Evaluation --------------------------------------------------------------
@torch.inference_mode()  # no autograd graph
def beam_search(model, sentences, device, beam):
    """Each sentence keeps its `beam` best partial translations (prefixes); each step extends
    every prefix by every word and keeps the `beam` best (beam 1: greedy, the best word each
    step). A prefix's score is the sum of its words' log-probabilities (the log of their
    product, which would underflow). Each word lowers the sum, so raw sums favour short outputs:
    candidates are ranked by sum / ((5 + length) / 6) ** ALPHA (GNMT, Wu et al. 2016), while
    each carries its raw sum, as the penalty changes with each word. The prefixes are the rows
    of one batch, best first; a row that has ended waits, unchanged, until every row has:
        sentence:  0  0  0 | 1  1  1      2 sentences, beam = 3:
        row:       0  1  2 | 3  4  5      row r belongs to sentence r // 3"""
    model.eval()
    src, lengths = encode(sentences, model.src_stoi, device)  # (N, S), (N,)
    memory, hidden = model.run_encoder(src, lengths)
    # N sentences, K = beam, R = N * K rows, S source words, T written, V target words
    n = len(sentences)
    memory = [m.repeat_interleave(beam, dim=0) for m in memory]  # (R, S, 2 * size), (R, S)
    hidden = hidden.repeat_interleave(beam, dim=1)  # (1, R, size)
    limit = (2 * lengths + MARGIN).repeat_interleave(beam).to(device)  # (R,)
    # A sentence's K rows all start as "<sos>": only row 0 may expand, or K copies would win.
    logp_sum = torch.full((n, beam), -math.inf, device=device)  # (N, K)
    logp_sum[:, 0] = 0.0
    words = torch.full((n * beam, 1), SOS, device=device)  # (R, T + 1)
    done = torch.zeros(n * beam, dtype=torch.bool, device=device)  # (R,)
    while not done.all():
        features, hidden, _ = model.run_decoder(words[:, -1:], hidden, *memory, need_weights=False)
        logp = model.out(features[:, -1]).log_softmax(dim=-1)  # (R, V)
        vocab = logp.size(1)
        logp[:, [PAD, SOS, UNK]] = float("-inf")  # never written
        # An ended row may only add <pad>, at no cost: its sum and rank stay (others may beat it).
        logp[done] = float("-inf")
        logp[done, PAD] = 0.0
        # The length once this step's word is added (<sos> stands in for it); ended rows add none.
        length = (words != PAD).sum(dim=1) - done.float()  # (R,)
        candidate_sum = logp_sum.view(-1, 1) + logp  # (R, V): raw sums
        candidate_rank = candidate_sum / (((5 + length) / 6) ** ALPHA).unsqueeze(1)
        # Lay a sentence's K * V candidates in one row: index j is row j // V plus word j % V.
        top = candidate_rank.view(n, beam * vocab).topk(beam).indices  # (N, K), best first
        logp_sum = candidate_sum.view(n, beam * vocab).gather(1, top)  # (N, K)
        first_row = beam * torch.arange(n, device=device)[:, None]  # (N, 1): 0, K, 2K...
        parent = (first_row + top // vocab).view(-1)  # (R,): the rows extended
        word = (top % vocab).view(-1)  # (R,): the word it adds
        # Each new prefix takes its parent's words, state and status. memory and limit need no
        # re-indexing: a parent is a row of the same sentence, whose rows share both.
        words = torch.cat([words[parent], word.unsqueeze(1)], dim=1)  # (R, T + 2)
        hidden = hidden[:, parent]  # (1, R, size)
        done = done[parent] | (word == EOS) | (length[parent] >= limit)  # (R,)
    answers = []
    for row in words[::beam, 1:].tolist():  # each sentence's first row, without <sos>
        answers.append([model.config["tgt_vocab"][j] for j in row if j > EOS])  # no <eos>, <pad>
    return answers

def translate(model, sentences, device, beam=1):
    """Translate word lists, answers in order (an empty one for an empty one): shortest first,
    CHUNK rows at a time, so memory stays bounded and a chunk's sentences end about together."""
    order = sorted((i for i, s in enumerate(sentences) if s), key=lambda i: len(sentences[i]))
    step = max(1, CHUNK // beam)  # sentences per chunk
    outputs = [[] for _ in sentences]
    for start in range(0, len(order), step):
        chunk = order[start:start + step]
        for i, words in zip(chunk, beam_search(model, [sentences[i] for i in chunk], device, beam)):
            outputs[i] = words
    return outputs

def bleu(hyps, refs):
    """Corpus BLEU-4 (Papineni et al. 2002); refs[i]: hyps[i]'s references. For n = 1..4, the
    share of hypothesis n-grams (runs of n words) found in a reference, each counted at most as
    often as any single reference has it; BLEU is their geometric mean times a brevity penalty,
    exp(1 - r / h) when the h hypothesis words are fewer than the r of the closest references:
    precision alone would reward saying little."""
    def ngrams(words, n):
        return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    matched = [0] * 4  # for n = 1..4: hypothesis n-grams found in a reference
    proposed = [0] * 4  # for n = 1..4: all hypothesis n-grams
    hyp_length = ref_length = 0
    for hyp, hyp_refs in zip(hyps, refs):
        hyp_length += len(hyp)
        ref_length += min((abs(len(r) - len(hyp)), len(r)) for r in hyp_refs)[1]
        for n in range(1, 5):
            most = Counter()  # each n-gram's highest count in one reference
            for r in hyp_refs:
                most |= ngrams(r, n)  # |: the max
            matched[n - 1] += sum((ngrams(hyp, n) & most).values())  # &: the min
            proposed[n - 1] += max(len(hyp) - n + 1, 0)
    if min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / p) for m, p in zip(matched, proposed)) / 4
    return 100 * min(1.0, math.exp(1 - ref_length / hyp_length)) * math.exp(log_precision)

def evaluate(model, pairs, device, beam=1):
    """(BLEU, distinct sources, their translations); each source against all its references."""
    refs = {}
    for src, tgt in pairs:
        refs.setdefault(tuple(src), []).append(tgt)
    outputs = translate(model, list(refs), device, beam)
    return bleu(outputs, list(refs.values())), list(refs), outputs

def report(model, test_set, device, beam):
    """Test BLEU, then the first test sentence's attention (rows: output words, and <eos> unless
    the answer was cut; columns: source words; denser: read more; multihead: the heads' mean).
    A weight says where a word took information from, not which source word it translates:
    each e_s has read the whole sentence, so words often read the final ".", whose forward
    state has read it all. It is not an alignment."""
    score, sources, outputs = evaluate(model, test_set, device, beam)
    log(f"\ntest: {len(sources)} source sentences | BLEU-4 {score:.1f} | beam {beam}\n")
    source = sources[0]
    answer = outputs[0]
    src, lengths = encode([source], model.src_stoi, device)
    prev, _ = encode([answer], model.tgt_stoi, device, (SOS,))
    with torch.inference_mode():  # one decoder call over the translation
        memory, hidden = model.run_encoder(src, lengths)
        _, _, weights = model.run_decoder(prev, hidden, *memory)  # (1, words + 1, S)
    rows = answer if len(answer) == 2 * len(source) + MARGIN else answer + ["<eos>"]
    widths = [max(len(w), 2) for w in source]
    m = max(len(w) for w in rows) + 1  # the output words' margin
    log(" " * m + " ".join(w.ljust(width) for w, width in zip(source, widths)))
    for word, row in zip(rows, weights[0].tolist()):
        log(word.ljust(m) + " ".join(" .:-=+*#%@"[round(9 * a)] * n for a, n in zip(row, widths)))

# --- Checkpoints -------------------------------------------------------------
def save_checkpoint(path, model):
    """Write {"kind", "config", "model"} to path.tmp, then rename it over path: all or nothing."""
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
        model = Translator(**state["config"])
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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.error = lambda message: p.exit(2, f"error: {message}\n")  # one line, no usage
    add = p.add_argument
    add("--data-dir", type=Path, default=HERE.parent / "data", help="where eng-fra.txt is")
    add("--pairs", type=Path, metavar="FILE", help="English<TAB>other language lines, not eng-fra")
    add("--reverse", action="store_true", help="translate English into the other language")
    add("--all-pairs", action="store_true", help="every pair, not only 'i am ...', 'he is ...'")
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
    add("--attention", default="luong", choices=["luong", "multihead"],
        help=f"luong: attend(); multihead: nn.MultiheadAttention, {HEADS} heads")
    add("--beam", type=int, default=4, help="beam size (1: greedy)")
    args = p.parse_args(argv)
    for name in ["epochs", "batch_size", "lr", "log_every", "beam"]:  # NaN is refused too
        if not 0 < getattr(args, name) < math.inf:
            p.error(f"--{name.replace('_', '-')} must be positive and finite")
    if not (0 <= args.seed < 2**63 and args.max_steps >= 0):
        p.error("--seed and --max-steps must be 0 or more (--seed below 2**63)")
    if not args.checkpoint.name:
        p.error("--checkpoint needs a file name")
    return args

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
        model = Translator(src_vocab, tgt_vocab, args.attention).to(device)
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
