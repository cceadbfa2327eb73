"""seq2seq-translation/train.py: attention, beam search, your own pairs either way, checkpoints
from the first epoch on, bad input (one line, no traceback).

One tiny model is trained once (module fixture) on conftest's make_pairs data; the tests reuse it.
"""

import math
import pickle
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, call, load_script, make_pairs

FOLDER = "seq2seq-translation"


@pytest.fixture(scope="module")
def s2s():
    return load_script(FOLDER)


@pytest.fixture(scope="module")
def trained(s2s, pairs_data, tmp_path_factory):
    """(checkpoint path, stderr of the training run) for a 30-step model."""
    ckpt = tmp_path_factory.mktemp("s2s") / "model.pt"
    code, out, err = call(s2s, "--data-dir", pairs_data, "--checkpoint", ckpt, "--device", "cpu",
                          "--max-steps", 30, "--batch-size", 16, "--log-every", 10, "--beam", 2)
    assert code == 0, err
    assert out == ""  # training prints its report to stderr only
    return ckpt, err


def translate(s2s, ckpt, *args, stdin=""):
    return call(s2s, "--checkpoint", ckpt, "--device", "cpu", "--translate", *args, stdin=stdin)


def one_line_error(result, needle, code=1):
    """Exit `code`, nothing on stdout, and stderr ends with one 'error: ...' line naming the
    problem (progress lines such as 'downloading ...' may come before it)."""
    exit_code, out, err = result
    lines = err.strip().splitlines()
    assert exit_code == code and out == "" and "Traceback" not in err, err
    assert lines[-1].startswith("error: ") and needle in lines[-1], err
    assert sum(line.startswith("error: ") for line in lines) == 1, err


def test_training_reports(trained):
    ckpt, err = trained
    assert ckpt.exists() and not ckpt.with_name("model.pt.tmp").exists()
    assert err.startswith("device cpu\n120 pairs")  # the two malformed lines are skipped
    assert "\ntest: 12 source sentences | BLEU-4 " in err
    header, *rows = err.split("\n\n")[-1].splitlines()  # the attention map, after a blank line
    assert header.startswith(" ") and rows, err  # source words above, an output word a row
    assert all(set(row.split(" ", 1)[1]) <= set(" .:-=+*#%@") for row in rows), err


def test_written_out_attention_equals_the_fused_blocks(s2s):
    """run_decoder()'s attention, written out, gives what nn.MultiheadAttention gives with the
    same weights and the same padding (its key_padding_mask is True where it must *ignore*:
    ~mask), context and the heads' mean weights alike; per head, it is
    F.scaled_dot_product_attention (its boolean mask is True where it may *attend*). Row 0's last
    two source positions are padding."""
    torch.manual_seed(0)
    size, heads = 16, s2s.HEADS
    model = s2s.Translator(s2s.SPECIALS + ["a"], s2s.SPECIALS + ["b"], size=size).eval()
    src = torch.tensor([[4] * 5 + [0] * 2, [4] * 7, [4] * 7])  # row 0 ends in two <pad>
    lengths = torch.tensor([5, 7, 7])
    prev = torch.tensor([[1, 4, 4], [1, 4, 2], [1, 2, 0]])  # "<sos> b b", "<sos> b <eos>", ...
    with torch.no_grad():
        (keys, values, mask), hidden = model.run_encoder(src, lengths)
        features, _, weights = model.run_decoder(prev, hidden, keys, values, mask)

        # the same pieces, computed by PyTorch's blocks
        emb = model.src_embed(src)
        packed = torch.nn.utils.rnn.pack_padded_sequence(emb, lengths, batch_first=True,
                                                         enforce_sorted=False)
        states = torch.nn.utils.rnn.pad_packed_sequence(model.encoder(packed)[0],
                                                        batch_first=True)[0]  # e_s: (B, S, 2 size)
        h = model.decoder(model.tgt_embed(prev), hidden)[0]  # h_t: (B, T, size)
        mha = torch.nn.MultiheadAttention(size, heads, kdim=2 * size, vdim=2 * size,
                                          batch_first=True)
        mha.q_proj_weight.copy_(model.query.weight)
        mha.k_proj_weight.copy_(model.key.weight)
        mha.v_proj_weight.copy_(model.value.weight)
        mha.in_proj_bias.copy_(torch.cat([model.query.bias, model.key.bias, model.value.bias]))
        mha.out_proj.weight.copy_(torch.eye(size))  # the mix layer plays this part in the model
        mha.out_proj.bias.zero_()
        context, mha_weights = mha(h, states, states, key_padding_mask=~mask)
        torch.testing.assert_close(weights, mha_weights)  # averaged over the heads
        expected = torch.tanh(model.mix(torch.cat([h, context], dim=-1)))
        torch.testing.assert_close(features, expected)

        query = model.query(h).unflatten(-1, (heads, -1)).transpose(1, 2)  # (B, heads, T, d)
        per_head = F.scaled_dot_product_attention(query, keys, values,
                                                  attn_mask=mask[:, None, None, :])
        torch.testing.assert_close(per_head.transpose(1, 2).flatten(2), context)
    assert weights[0, :, 5:].abs().max() == 0 and torch.allclose(weights.sum(-1), torch.ones(3, 3))


def test_bleu_counts_clipped_ngrams_and_the_brevity_penalty(s2s):
    """Corpus BLEU-4 by hand: n-gram matches are summed over the corpus before the geometric
    mean; a short answer pays exp(1 - r / h) against its closest reference; a word counts at
    most as often as one reference has it."""
    hyps = [["the", "cat", "sat", "on", "the", "mat"], ["a", "b", "c", "d"]]
    refs = [[["the", "cat", "is", "on", "the", "mat"]], [["a", "b", "c", "d"]]]
    # matched / proposed n-grams: 1-grams 9/10, 2-grams 6/8, 3-grams 3/6, 4-grams 1/4
    assert s2s.bleu(hyps, refs) == pytest.approx(100 * (9 / 10 * 6 / 8 * 3 / 6 * 1 / 4) ** 0.25)
    closest_is_5 = [[list("abcdef"), list("abcde")]]  # r = 5 (|5 - 4| < |6 - 4|), h = 4
    assert s2s.bleu([list("abcd")], closest_is_5) == pytest.approx(100 * math.exp(1 - 5 / 4))
    # "a" 3 times, but at most twice in one reference: 1-grams 5/6, 2-grams 4/5, 3: 2/4, 4: 1/3
    clipped = s2s.bleu([list("abcdaa")], [[list("abcdef"), list("xaayzw")]])
    assert clipped == pytest.approx(100 * (5 / 6 * 4 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    assert s2s.bleu([list("abcd")], [[list("abcd")]]) == pytest.approx(100.0)


def test_no_unk_and_output_capped_per_sentence(s2s, trained):
    """Even a model that prefers <unk> above all and never writes <eos> gives neither: each
    output stops at 2 * (source words) + MARGIN words."""
    model = s2s.load_checkpoint(trained[0], torch.device("cpu"))
    with torch.no_grad():
        model.out.bias[s2s.UNK] = 100.0
        model.out.bias[s2s.EOS] = -100.0
    sources = [["je", "suis", "grand", "."], ["il", "est"] * 20]
    for beam in (1, 3):
        outputs = s2s.translate(model, sources, torch.device("cpu"), beam)
        assert [len(out) for out in outputs] == [2 * 4 + s2s.MARGIN, 2 * 40 + s2s.MARGIN]
        assert not any(w in s2s.SPECIALS for out in outputs for w in out)


def test_beam_search_keeps_the_most_likely_sentence(s2s, trained):
    """Beam search scores what it returns at least as well as greedy, by the same measure."""
    model = s2s.load_checkpoint(trained[0], torch.device("cpu"))
    sources = [["je", "suis", "grand", "."], ["elle", "est", "triste", "."], ["nous", "sommes"]]

    def score(out, src):  # log-probability of out + <eos> given src, over length ** ALPHA
        s, lengths = s2s.encode([src], model.src_stoi, "cpu")
        t, _ = s2s.encode([out], model.tgt_stoi, "cpu", (s2s.SOS,), (s2s.EOS,))
        memory, hidden = model.run_encoder(s, lengths)
        logp = model.out(model.run_decoder(t[:, :-1], hidden, *memory)[0]).log_softmax(-1)
        return logp[0].gather(1, t[0, 1:, None]).sum() / (t.size(1) - 1) ** s2s.ALPHA

    with torch.no_grad():
        greedy = s2s.translate(model, sources, "cpu", 1)
        beam = s2s.translate(model, sources, "cpu", 4)
        for src, g, b in zip(sources, greedy, beam):
            assert score(b, src) >= score(g, src) - 1e-4


def test_ended_rows_wait_without_changing_answers(s2s, trained):
    """A sentence whose beam rows have all ended waits in the batch for the others: every
    answer is the same as translating that sentence alone."""
    model = s2s.load_checkpoint(trained[0], torch.device("cpu"))
    sources = [["je"], ["il", "est", "triste", "et", "tres", "grand", "."], ["je", "suis", "grand"]]
    with torch.no_grad():
        together = s2s.translate(model, sources, "cpu", 3)
        for src, out in zip(sources, together):
            assert out == s2s.translate(model, [src], "cpu", 3)[0]


def test_more_sentences_than_a_chunk_come_back_all_and_in_order(s2s, trained, monkeypatch):
    """translate() decodes CHUNK rows (sentences x beam) at a time, shortest first, and puts
    each answer back in its place; an empty sentence gets an empty answer."""
    model = s2s.load_checkpoint(trained[0], torch.device("cpu"))
    sources = [["il", "est", "triste", "."], [], ["je"], ["elle", "est", "tres", "grande", "."],
               ["nous", "sommes"], ["je", "suis", "grand", "."], ["tu", "es"]]
    alone = [s2s.translate(model, [src], "cpu", 2)[0] if src else [] for src in sources]
    calls = []
    beam_search = s2s.beam_search

    def counted(model, sentences, device, beam):
        calls.append(len(sentences))
        return beam_search(model, sentences, device, beam)

    monkeypatch.setattr(s2s, "CHUNK", 4)  # 4 rows: 2 sentences a chunk at beam 2
    monkeypatch.setattr(s2s, "beam_search", counted)
    assert s2s.translate(model, sources, "cpu", 2) == alone
    assert calls == [2, 2, 2]  # 6 non-empty sentences, 2 at a time


def test_unknown_french_words_read_as_zeros(s2s, trained):
    """No training word maps to <unk>, so its embedding row gets no gradient: it starts at zero
    and stays there, instead of feeding random noise to the encoder for every unknown word."""
    model = s2s.load_checkpoint(trained[0], torch.device("cpu"))
    assert not model.src_embed.weight[s2s.UNK].any()
    assert model.src_embed.weight[s2s.UNK + 1].any()  # a trained word's row is not


def test_stdin_keeps_order_and_empty_lines(s2s, trained):
    code, out, err = translate(s2s, trained[0], "-", stdin="je suis grand .\n\nil est triste .\n")
    assert code == 0, err
    lines = out.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == "", out  # 3 lines + final newline
    assert lines[0] and lines[2]


def test_stdin_sorted_by_length_inside_but_answered_in_order(s2s, trained):
    """Sentences are translated shortest first (fewer decoding steps), yet each answer comes
    out on its own line: the same as translating that sentence alone."""
    sentences = ["il est triste et tres grand .", "je", "", "je suis grand .", "je"]
    code, out, err = translate(s2s, trained[0], "-", stdin="\n".join(sentences) + "\n")
    assert code == 0, err
    alone = [translate(s2s, trained[0], s)[1] if s else "\n" for s in sentences]
    assert out == "".join(alone)


def test_mixed_case_and_stray_punctuation_normalise(s2s, trained):
    _, plain, _ = translate(s2s, trained[0], "je suis grand .")
    code, messy, err = translate(s2s, trained[0], "  JE   Suis GRAND. ")
    assert code == 0 and messy == plain, err
    code, out, err = translate(s2s, trained[0], "je suis ; grand ?! (\u00e9)")
    assert code == 0 and len(out.splitlines()) == 1, err


@pytest.mark.parametrize("sentence", ["zorglub blip fnord", "I am happy.", "je suis " * 250],
                         ids=["unknown words", "English", "500 words"])
def test_unknown_english_and_very_long_input_still_translate(s2s, trained, sentence):
    code, out, err = translate(s2s, trained[0], sentence)
    assert code == 0, err
    assert len(out.splitlines()) == 1 and "<unk>" not in out
    assert "Traceback" not in err


def test_stdin_bytes_that_are_not_utf8_still_translate(trained):
    """A Latin-1 file piped in: the odd bytes are replaced, every line still gets its answer."""
    cmd = [sys.executable, str(REPO / FOLDER / "train.py"), "--checkpoint", str(trained[0]),
           "--device", "cpu", "--translate", "-"]
    run = subprocess.run(cmd, input=b"je suis grand .\nd\xe9j\xe0 l\xe0\n", capture_output=True,
                         timeout=120)
    assert run.returncode == 0 and len(run.stdout.splitlines()) == 2, run.stderr.decode()


def test_reader_closing_the_pipe_ends_quietly(trained, tmp_path):
    """`--translate - | head -1` over many lines: head leaves early, no traceback on stderr."""
    (tmp_path / "in.txt").write_text("je suis grand .\nil est triste .\n" * 3000)
    script = REPO / FOLDER / "train.py"
    shell = (f"'{sys.executable}' '{script}' --checkpoint '{trained[0]}' --device cpu "
             f"--translate - < in.txt 2> err.txt | head -1")
    run = subprocess.run(["bash", "-c", shell], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert len(run.stdout.splitlines()) == 1, run.stdout
    assert (tmp_path / "err.txt").read_text() == "device cpu\n"  # and nothing else


def test_missing_corrupt_foreign_and_unsafe_checkpoints(s2s, trained, tmp_path):
    one_line_error(translate(s2s, tmp_path / "none.pt", "je suis grand ."),
                   "train one: python seq2seq-translation/train.py")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(trained[0].read_bytes()[:200])
    one_line_error(translate(s2s, corrupt, "x"), "no usable checkpoint")
    foreign = tmp_path / "foreign.pt"
    torch.save({"kind": "char-rnn-classification", "model": {}}, foreign)
    one_line_error(translate(s2s, foreign, "x"), "no usable checkpoint")
    broken = tmp_path / "broken.pt"
    state = torch.load(trained[0], weights_only=True)
    state["model"].pop("out.weight")
    torch.save(state, broken)
    one_line_error(translate(s2s, broken, "x"), "no usable checkpoint")
    unsafe = tmp_path / "unsafe.pt"  # pickles an arbitrary object: weights_only refuses it
    torch.save({"kind": "seq2seq-translation", "payload": pickle.PicklingError("x")}, unsafe)
    one_line_error(translate(s2s, unsafe, "x"), "no usable checkpoint")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(s2s, trained):
    one_line_error(call(s2s, "--device", "cuda", "--translate", "x"), "not available")


@pytest.mark.parametrize("flags, needle", [
    (["--epochs", "x"], "--epochs"), (["--beam", "1.5"], "--beam"),
    (["--attention", "luong"], "--attention"), (["--device", "tpu"], "--device")])
def test_bad_flags_are_one_line_exit_2(s2s, flags, needle):
    one_line_error(call(s2s, "--device", "cpu", *flags), needle, code=2)


def test_empty_missing_unreadable_and_filtered_out_data(s2s, tmp_path):
    common = ["--checkpoint", tmp_path / "m.pt", "--device", "cpu", "--max-steps", 1]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "eng-fra.txt").write_text("\n\n")
    one_line_error(call(s2s, "--data-dir", tmp_path / "empty", *common), "under 10 distinct")
    # a folder without eng-fra.txt tries the (offline, failing) download
    one_line_error(call(s2s, "--data-dir", tmp_path / "nothing", *common), "urlopen error")
    (tmp_path / "folder" / "eng-fra.txt").mkdir(parents=True)  # exists, but cannot be read
    one_line_error(call(s2s, "--data-dir", tmp_path / "folder", *common), "Is a directory")
    (tmp_path / "few" / "eng-fra.txt").parent.mkdir()  # 9 sentences: too few to split
    (tmp_path / "few" / "eng-fra.txt").write_text("".join(f"I am {i}.\tJe suis {i}.\n"
                                                          for i in range(9)))
    one_line_error(call(s2s, "--data-dir", tmp_path / "few", *common), "under 10 distinct")
    (tmp_path / "other" / "eng-fra.txt").parent.mkdir()  # no "i am", "he is"... sentences
    (tmp_path / "other" / "eng-fra.txt").write_text("Hello.\tBonjour.\nThanks.\tMerci.\n")
    one_line_error(call(s2s, "--data-dir", tmp_path / "other", *common), "--all-pairs")
    assert not (tmp_path / "m.pt").exists()


def test_download_has_a_timeout(s2s, tmp_path, monkeypatch):
    """The first-run download gives up after 60 s without data."""
    timeouts = []

    def urlopen(url, timeout):
        timeouts.append(timeout)
        raise OSError("offline")

    monkeypatch.setattr(s2s.urllib.request, "urlopen", urlopen)
    one_line_error(call(s2s, "--data-dir", tmp_path / "fresh", "--checkpoint", tmp_path / "m.pt",
                        "--device", "cpu", "--max-steps", 2), "error: offline")
    assert timeouts == [60]


def test_apostrophes_are_kept_and_the_prefix_filter_finds_them(s2s, tmp_path):
    """An apostrophe starts a word ("i 'm", "j 'ai"): each sentence keeps the word count it had
    when apostrophes were dropped, the prefix filter finds "I'm ...", and answers print "i'm"."""
    assert s2s.tokenize("I'm wet.") == ["i", "'m", "wet", "."]
    assert s2s.tokenize("J\u2019ai faim !") == ["j", "'ai", "faim", "!"]  # a typographic apostrophe
    (tmp_path / "p.txt").write_text("I'm wet.\tJe suis mouill\u00e9.\nHe's here.\tIl est l\u00e0.\n"
                                    "Go.\tVa !\n" + FILLER, encoding="utf-8")
    pairs = s2s.read_pairs(tmp_path / "p.txt", reverse=False, all_pairs=False)
    assert pairs[:-10] == [[["je", "suis", "mouille", "."], ["i", "'m", "wet", "."]],
                     [["il", "est", "la", "."], ["he", "'s", "here", "."]]]  # not "go ."


@pytest.mark.parametrize("words, printed", [(["i", "'m", "wet", "."], "i'm wet ."),
                                            (["j", "'ai", "faim", "."], "j'ai faim .")])
def test_answers_print_their_apostrophes(s2s, trained, monkeypatch, words, printed):
    monkeypatch.setattr(s2s, "translate", lambda model, chunk, device, beam: [words] * len(chunk))
    code, out, err = translate(s2s, trained[0], "je suis mouille .")
    assert code == 0 and out == printed + "\n", err


def test_all_pairs_max_words_reverse_and_extra_columns(s2s, tmp_path, monkeypatch):
    (tmp_path / "p.txt").write_text("Go.\tVa !\tCC-BY 2.0\tmore\nI am tall.\tJe suis grand.\n"
                                    "I am a very tall man.\tJe suis un homme tres grand.\n"
                                    + FILLER)

    def read(*args):
        return [tuple(pair) for pair in s2s.read_pairs(*args)][:-10]

    assert read(tmp_path / "p.txt", False, False) == [(["je", "suis", "grand", "."],
                                                           ["i", "am", "tall", "."]),
                                                          (["je", "suis", "un", "homme", "tres",
                                                            "grand", "."],
                                                           ["i", "am", "a", "very", "tall", "man",
                                                            "."])]
    monkeypatch.setattr(s2s, "MAX_WORDS", 5)
    everything = read(tmp_path / "p.txt", False, True)  # no prefix filter; <= 5 words a side
    assert everything == [(["va", "!"], ["go", "."]), (["je", "suis", "grand", "."],
                                                       ["i", "am", "tall", "."])]
    assert read(tmp_path / "p.txt", True, True)[0] == (["go", "."], ["va", "!"])  # English first


FILLER = "".join(f"I am {i}.\tJe suis {i}.\n" for i in range(10))  # the 10 sentences a split needs


def own_pairs(folder, name):
    """conftest's tiny pairs under another file name, with German-looking words instead."""
    text = (make_pairs(folder / "src") / "eng-fra.txt").read_text(encoding="utf-8")
    path = folder / name
    path.write_text(text.replace("je suis", "ich bin").replace("il est", "er ist"), "utf-8")
    return path


@pytest.mark.parametrize("reverse", [False, True], ids=["deu-eng", "eng-deu"])
def test_own_pairs_file_trains_and_translates_either_way(s2s, tmp_path, reverse, monkeypatch):
    """--pairs FILE of another name, both directions; a file that is not the default is never
    downloaded, so the data folder may not even exist."""
    monkeypatch.setattr(s2s, "download", not_called)
    path = own_pairs(tmp_path, "deu-eng.txt")
    ckpt = tmp_path / "m.pt"
    flags = ["--reverse"] if reverse else []
    code, out, err = call(s2s, "--pairs", path, "--data-dir", tmp_path / "none", "--checkpoint",
                          ckpt, "--device", "cpu", "--epochs", 2, "--batch-size", 16, *flags)
    assert code == 0 and out == "" and "120 pairs from deu-eng.txt" in err, err
    config = torch.load(ckpt, weights_only=True)["config"]
    source_word, target_word = ("tall", "ich") if reverse else ("ich", "tall")
    assert source_word in config["src_vocab"] and target_word in config["tgt_vocab"]
    sentence = "I am tall." if reverse else "Ich bin grand."
    code, out, err = translate(s2s, ckpt, sentence)
    assert code == 0 and len(out.splitlines()) == 1, err
    assert set(out.split()) <= set(config["tgt_vocab"])
    one_line_error(call(s2s, "--pairs", tmp_path / "missing.txt", "--checkpoint", ckpt,
                        "--device", "cpu"), f"No such file or directory: '{tmp_path}/missing.txt'")


def not_called(*args, **kwargs):
    raise AssertionError("only the default eng-fra.txt may be downloaded")


def test_every_training_word_gets_an_id(s2s):
    """The vocabulary: the specials, then each distinct training word, sorted."""
    assert s2s.build_vocab([["je", "suis", "."], ["je", "vais"]]) == s2s.SPECIALS + [
        ".", "je", "suis", "vais"]


def test_ctrl_c_after_the_first_epoch_leaves_a_usable_model(s2s, pairs_data, tmp_path,
                                                            monkeypatch):
    """Every epoch is validated and the first always saves (its BLEU beats none), so a Ctrl-C
    in epoch 2 of 6 names a checkpoint that translates."""
    ckpt = tmp_path / "m.pt"
    real_encode = s2s.encode
    calls = []
    steps_per_epoch = 96 // 16  # conftest's 120 pairs: 96 for training, 16 a batch

    def encode_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2 * steps_per_epoch + 2:  # two encode calls a step: in epoch 2
            raise KeyboardInterrupt
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(s2s, "encode", encode_then_interrupt)
    code, out, err = call(s2s, "--data-dir", pairs_data, "--checkpoint", ckpt, "--device", "cpu",
                          "--epochs", 6, "--batch-size", 16)
    monkeypatch.setattr(s2s, "encode", real_encode)
    assert code == 130 and out == "", err
    assert "epoch 1/6 done | val BLEU" in err and "epoch 2/6 done" not in err, err
    assert err.splitlines()[-1] == "interrupted"
    code, out, err = translate(s2s, ckpt, "je suis grand .")
    assert code == 0 and len(out.splitlines()) == 1, err


def test_help_says_how_to_quote(s2s):
    code, out, _ = call(s2s, "--help")
    text = " ".join(out.split())
    assert code == 0 and "one quoted sentence each" in text
    for flag in ("--pairs FILE", "--reverse", "--all-pairs", "--beam"):
        assert flag in text
