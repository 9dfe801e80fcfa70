"""The Python side of tests/test_interop_lm_eval.cpp: agreement of `prores eval`, `prores generate` and
`prores serve` with lm-evaluation-harness 0.4.13 and transformers on the export-hf copy of a checkpoint.

Subcommands (run with the reference interpreter, test::reference_python(); launch/install_references.sh):
  corpus OUT                          a seeded training corpus (documents separated by blank lines)
  tasks DIR --tokenizer M --seq-length L [--load CKPT --prores BIN]
                                      agree_mc.jsonl, agree_target.jsonl, agree_rolling.jsonl (docs/eval.md
                                      "Task files"), built so that some requests are truncated, one context is
                                      empty and the rolling text spans more than three windows
  hflm --hf HF --tasks DIR --samples DIR [--samples DIR2 ...] --results R [--results R2 ...] --seq-length L
                                      lm_eval's HFLM on the same requests against our samples and results
  generate --hf HF --max-new-tokens N [--ours-ignore-eos F ...] [--ours-stop-at-eos F ...]
                                      transformers' greedy generate against `prores generate --output-json`
                                      (with --ignore-eos: no EOS stop there either)
  server --url URL --tasks DIR --samples DIR --results R --seq-length L
                                      lm_eval's local-completions (remote tokenizer) against our samples

Each comparison prints `check: ...` lines, then `summary: {json}` and exits 1 when something disagrees.
Tolerance of a log-likelihood: |ours - theirs| <= 1e-4 * max(|ours|, |theirs|, 1e-3), i.e. 1e-4 relative
with an absolute floor of 1e-7 for values nearer zero than 1e-3.
"""
import argparse
import contextlib
import json
import math
import os
import random
import re
import sys

REL_TOL = 1e-4
ABS_FLOOR_SCALE = 1e-3  # below this magnitude the tolerance is 1e-4 * 1e-3 = 1e-7 absolute

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def lexicon(seed=20260611, n=300):
    rng = random.Random(seed)
    return ["".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 8))) for _ in range(n)]


def skewed_word(rng, lex):
    return lex[min(rng.randrange(len(lex)), rng.randrange(len(lex)))]


def sentence(rng, lex, n):
    return " ".join(skewed_word(rng, lex) for _ in range(n))


# ----------------------------------------------------------------------------------------------------------
# corpus and task files


def cmd_corpus(args):
    rng, lex = random.Random(7), lexicon()
    docs, size = [], 0
    while size < 300_000:
        # mostly one line, so that EOS follows most full stops and greedy generation reaches it
        lines = [sentence(rng, lex, rng.randint(3, 12)) + "." for _ in range(1 if rng.random() < 0.7 else 2)]
        docs.append("\n".join(lines))
        size += len(docs[-1]) + 2
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n\n".join(docs) + "\n")


def write_task(path, task, kind, metrics, docs):
    header = {"prores_eval_task": 1, "task": task, "kind": kind, "split": "test", "metrics": metrics,
              "num_docs": len(docs), "source": "tests/lm_eval_check.py (seeded synthetic text)"}
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(header, ensure_ascii=False) + "\n")
        for i, d in enumerate(docs):
            f.write(json.dumps({"doc_id": i, **d}, ensure_ascii=False) + "\n")


def cmd_tasks(args):
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=args.tokenizer)
    L = args.seq_length
    rng, lex = random.Random(11), lexicon()
    os.makedirs(args.dir, exist_ok=True)

    def long_text(min_tokens):
        text = sentence(rng, lex, 10)
        while len(sp.encode(text)) <= min_tokens:
            text += rng.choice([" ", ". ", ".\n", ", "]) + sentence(rng, lex, 6)
        return text

    # Multiple choice: 20 documents of 2-4 choices. Trailing whitespace of every kind on some contexts, an
    # empty context (doc 5: the BOS token stands in), contexts longer than the model (docs 7, 13: left
    # truncation), a WinoGrande-like document (doc 16: one context per choice, one shared continuation),
    # non-ASCII and byte-fallback characters (doc 9: acc_norm counts code points, not bytes).
    def fits(requests):  # every request within L tokens (none truncated, by either lm-eval model)
        return all(len(sp.encode(c + x)) + (c == "") < L for c, x in requests)

    endings = ["", " ", "\n", "  ", ":", "\n\n", " \n", ":"]
    mc = []
    for d in range(20):
        k = 2 + d % 3
        while True:
            choices = [sentence(rng, lex, rng.randint(1, 3)) for _ in range(k)]
            stem = sentence(rng, lex, rng.randint(2, 6))
            if d == 9:
                choices[0] = "naïve café ünïcödé"
                choices[1] = "日本 " + choices[1]
            if d == 3:
                choices[1] = choices[1] + "."
            if d == 5:
                context = ""
            elif d in (7, 13):
                context = "Passage: " + long_text(L + 20) + "\nQuestion:"
            else:
                context = "Q: " + stem + "?\nA" + endings[d % len(endings)]
            if d == 16:
                shared = " " + sentence(rng, lex, 4)
                requests = [[stem + " " + c, shared] for c in choices]
                chars = [len(stem + " " + c) for c in choices]
            else:
                requests = [[context, " " + c] for c in choices]
                chars = [len(c) for c in choices]
            if d in (7, 13) or fits(requests):
                break
        mc.append({"requests": requests, "gold": rng.randrange(k), "choice_chars": chars})

    # Continuations that are the model's greedy ones (is_greedy true), where their text tokenizes back
    # to the same tokens after the context: MC doc 0 choice 1 (not gold) and doc 4's gold choice.
    greedy = greedy_continuer(args.prores, args.load, sp, args.dir) if args.load else None
    found = 0
    for d, i in ((0, 1), (4, None)):
        doc = mc[d]
        i = doc["gold"] if i is None else i
        cont = greedy(doc["requests"][i][0], 1 + d % 3) if greedy else None
        if cont is not None and cont.strip() and fits([[doc["requests"][i][0], cont]]):
            doc["requests"][i][1] = cont
            doc["choice_chars"][i] = len(cont) - cont.startswith(" ")
            found += 1

    write_task(os.path.join(args.dir, "agree_mc.jsonl"), "agree_mc", "multiple_choice", ["acc", "acc_norm"], mc)

    # Target (LAMBADA): the last word of a passage after the rest; doc 4 longer than the model; docs 6-8
    # continue with the model's greedy tokens (acc 1 when lm-eval and we agree that they are greedy).
    target = []
    for d in range(10):
        if d == 4:
            text = long_text(L + 10)
        else:
            while not fits([[text := ". ".join(sentence(rng, lex, rng.randint(3, 7)) for _ in range(rng.randint(1, 2))), ""]]):
                pass
        head, last = text.rsplit(" ", 1)
        cont = greedy(head, d - 5) if greedy and d in (6, 7, 8) else None
        found += cont is not None
        target.append({"requests": [[head, cont if cont is not None else " " + last]]})
    write_task(os.path.join(args.dir, "agree_target.jsonl"), "agree_target", "target", ["acc", "perplexity"], target)

    # Rolling: one text longer than three windows (with newlines and a double space), a short one, and one
    # with leading and trailing whitespace (empty words in lm-eval's count) and a non-ASCII word.
    rolling_texts = [
        long_text(3 * L + 20).replace(". ", ".\n", 3).replace(" ", "  ", 1),
        sentence(rng, lex, 8) + ".",
        " " + sentence(rng, lex, 20) + " déjà vu " + sentence(rng, lex, 30) + ".\n",
    ]
    rolling = [{"text": t, "words": len(re.split(r"\s+", t)), "bytes": len(t.encode("utf-8"))} for t in rolling_texts]
    write_task(os.path.join(args.dir, "agree_rolling.jsonl"), "agree_rolling", "rolling",
               ["word_perplexity", "byte_perplexity", "bits_per_byte"], rolling)
    print(f"tasks: {len(mc)} multiple-choice, {len(target)} target, {len(rolling)} rolling documents in {args.dir}; "
          f"{found} greedy continuations; rolling text 0 has {len(sp.encode(rolling_texts[0]))} tokens ({L} per window)")


def greedy_continuer(prores, checkpoint, sp, work_dir):
    """f(context, n): the text of the model's n greedy tokens after `context` (`prores generate`, no BOS: our
    and HFLM's add_bos_token=False rule), or None when that text does not tokenize back to them after it."""
    import subprocess

    def f(context, n):
        out = os.path.join(work_dir, "greedy.json")
        subprocess.run([prores, "generate", "--load", checkpoint, "--prompt", context, "--max-new-tokens", str(n),
                        "--ignore-eos", "--output-json", out], check=True, stdout=subprocess.DEVNULL)
        sample = json.load(open(out))["samples"][0]
        ctx, g = sample["prompt_tokens"], sample["tokens"]
        os.remove(out)
        if ctx != sp.encode(context) or sp.eos_id() in g:
            return None
        full, head = sp.decode(ctx + g), sp.decode(ctx)
        if not full.startswith(head):
            return None
        cont = full[len(head):]
        whole = sp.encode(context + cont)
        return cont if whole[:len(ctx)] == ctx and whole[len(ctx):] == g else None

    return f


# ----------------------------------------------------------------------------------------------------------
# reading ours


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f.read().split("\n") if line]


def read_task(path):
    lines = read_jsonl(path)
    return lines[0], lines[1:]


def task_paths(d):
    return {name[:-6]: os.path.join(d, name) for name in sorted(os.listdir(d)) if name.endswith(".jsonl")}


# ----------------------------------------------------------------------------------------------------------
# comparisons


class Report:
    def __init__(self):
        self.failures = []
        self.max_rel = 0.0
        self.max_abs = 0.0
        self.worst = None
        self.compared = 0
        self.greedy_true = 0
        self.by_label = {}  # the largest relative difference per run (samples directory)

    def fail(self, msg):
        self.failures.append(msg)
        print("MISMATCH: " + msg)

    def ll(self, what, ours, theirs):
        self.compared += 1
        diff = abs(ours - theirs)
        scale = max(abs(ours), abs(theirs), ABS_FLOOR_SCALE)
        rel = diff / scale
        if rel > self.max_rel:
            self.max_rel, self.worst = rel, f"{what}: ours {ours!r} theirs {theirs!r}"
        self.max_abs = max(self.max_abs, diff)
        label = what.split(" ")[0]
        self.by_label[label] = max(self.by_label.get(label, 0.0), rel)
        if rel > REL_TOL:
            self.fail(f"{what}: loglikelihood ours {ours!r} theirs {theirs!r} (relative {rel:.3g})")

    def greedy(self, what, ours, theirs):
        self.greedy_true += bool(theirs)
        if bool(ours) != bool(theirs):
            self.fail(f"{what}: is_greedy ours {ours} theirs {theirs}")

    def metric(self, what, ours, theirs, rel_tol):
        if isinstance(theirs, float) and rel_tol > 0:
            if not math.isclose(ours, theirs, rel_tol=rel_tol, abs_tol=1e-12):
                self.fail(f"{what}: ours {ours!r} theirs {theirs!r}")
        elif ours != theirs:
            self.fail(f"{what}: ours {ours!r} theirs {theirs!r}")

    def summary(self, **extra):
        out = {"compared": self.compared, "max_rel_diff": self.max_rel, "max_abs_diff": self.max_abs,
               "worst": self.worst, "greedy_true": self.greedy_true, "failures": len(self.failures), **extra}
        if len(self.by_label) > 1:
            out["max_rel_diff_by_run"] = self.by_label
        print("summary: " + json.dumps(out))
        return 1 if self.failures else 0


def lm_eval_metrics(kind, docs, resps):
    """lm-eval 0.4.13's per-document metrics and aggregates (ConfigurableTask.process_results with
    lm_eval.api.metrics) from one (ll, is_greedy) list per document (rolling: one total ll)."""
    import numpy as np
    from lm_eval.api import metrics as M

    per_doc, agg = [], {}
    if kind == "multiple_choice":
        for doc, r in zip(docs, resps):
            lls = np.array([x[0] for x in r])
            chars = np.array([float(c) for c in doc["choice_chars"]])
            per_doc.append({"acc": 1.0 if int(np.argmax(lls)) == doc["gold"] else 0.0,
                            "acc_norm": 1.0 if int(np.argmax(lls / chars)) == doc["gold"] else 0.0})
        for m in ("acc", "acc_norm"):
            items = [p[m] for p in per_doc]
            agg[m] = M.mean(items)
            agg[m + "_stderr"] = M.mean_stderr(items)
    elif kind == "target":
        for r in resps:
            per_doc.append({"acc": 1.0 if r[0][1] else 0.0, "perplexity": r[0][0]})
        agg["acc"] = M.mean([p["acc"] for p in per_doc])
        agg["acc_stderr"] = M.mean_stderr([p["acc"] for p in per_doc])
        agg["perplexity"] = M.perplexity([p["perplexity"] for p in per_doc])
    else:
        for doc, ll in zip(docs, resps):
            nbytes = doc["bytes"]
            per_doc.append({"word_perplexity": (ll, doc["words"]), "byte_perplexity": (ll, nbytes),
                            "bits_per_byte": (ll, nbytes)})
        agg["word_perplexity"] = M.weighted_perplexity([p["word_perplexity"] for p in per_doc])
        agg["byte_perplexity"] = M.weighted_perplexity([p["byte_perplexity"] for p in per_doc])
        agg["bits_per_byte"] = M.bits_per_byte([p["bits_per_byte"] for p in per_doc])
    return per_doc, agg


def log_metric(name, value):
    """The quantity whose relative error is that of a summed log-likelihood."""
    return math.log(value) if "perplexity" in name else value


def compare_task(rep, label, header, docs, ours_samples, ours_results, theirs, windows_theirs=None):
    """theirs: per document, a list of (ll, is_greedy) per request (rolling: the total ll), as lm-eval
    returned them. windows_theirs (rolling only): per document the (ll, is_greedy) of each window."""
    kind, task = header["kind"], header["task"]
    by_id = {s["doc_id"]: s for s in ours_samples}
    if sorted(by_id) != list(range(len(docs))):
        rep.fail(f"{label} {task}: samples hold doc_ids {sorted(by_id)}, the task {len(docs)} documents")
        return
    ours_resps = []
    for doc, th in zip(docs, theirs):
        s = by_id[doc["doc_id"]]
        what = f"{label} {task} doc {doc['doc_id']}"
        if kind == "rolling":
            ours_windows = s["resps"]
            if windows_theirs is not None:
                tw = windows_theirs[doc["doc_id"]]
                if len(tw) != len(ours_windows):
                    rep.fail(f"{what}: {len(ours_windows)} windows, lm-eval {len(tw)}")
                else:
                    for w, (o, t) in enumerate(zip(ours_windows, tw)):
                        rep.ll(f"{what} window {w}", o[0], t[0])
                        rep.greedy(f"{what} window {w}", o[1], t[1])
            total = sum(w[0] for w in ours_windows)
            rep.ll(f"{what} total", total, th)
            ours_resps.append(total)
            continue
        if [list(a) for a in s["arguments"]] != [list(r) for r in doc["requests"]]:
            rep.fail(f"{what}: samples' arguments differ from the task file's requests")
        if len(s["resps"]) != len(th):
            rep.fail(f"{what}: {len(s['resps'])} resps, lm-eval {len(th)}")
            continue
        for i, (o, t) in enumerate(zip(s["resps"], th)):
            rep.ll(f"{what} request {i}", o[0], t[0])
            rep.greedy(f"{what} request {i}", o[1], t[1])
        ours_resps.append(s["resps"])
    theirs_doc, theirs_agg = lm_eval_metrics(kind, docs, theirs)
    ours_doc, ours_agg = lm_eval_metrics(kind, docs, ours_resps)
    # Per document: accuracies identical; perplexity items are log-likelihoods (compared above).
    for doc, od, td, s in zip(docs, ours_doc, theirs_doc, [by_id[d["doc_id"]] for d in docs]):
        for m in ("acc", "acc_norm"):
            if m in td:
                rep.metric(f"{label} {task} doc {doc['doc_id']} {m} (lm-eval on its lls vs ours)", od[m], td[m], 0)
                if m in s:
                    rep.metric(f"{label} {task} doc {doc['doc_id']} {m} (our sample record)", s[m], td[m], 0)
    results = ours_results["results"][task]
    for m, v in theirs_agg.items():
        key = m + ",none"
        if key not in results:
            rep.fail(f"{label} {task}: our results lack {key}")
            continue
        if m.startswith("acc"):
            # identical accuracies; our stderr within float rounding of lm-eval's formula
            rep.metric(f"{label} {task} {key}", results[key], v, 1e-12 if m.endswith("stderr") else 0)
        else:
            # our aggregate = lm-eval's formula on our lls (float rounding), and within 1e-4 of lm-eval's
            # value on its lls in the log domain (what a 1e-4 relative log-likelihood bound gives)
            rep.metric(f"{label} {task} {key} (lm-eval's formula on our lls)", results[key], ours_agg[m], 1e-12)
            a, b = log_metric(m, results[key]), log_metric(m, v)
            if abs(a - b) > REL_TOL * max(abs(a), abs(b), ABS_FLOOR_SCALE):
                rep.fail(f"{label} {task} {key}: ours {results[key]!r} lm-eval {v!r}")
    shown = {k: round(v, 6) for k, v in theirs_agg.items() if not k.endswith("stderr")}
    print(f"check: {label} {task}: lm-eval {shown}, ours "
          f"{ {k: round(results[k + ',none'], 6) for k in shown} }")


def tokenizer_check(rep, hf_tok, sp, strings, label):
    bad = 0
    for s in strings:
        a, b = sp.encode(s), hf_tok.encode(s, add_special_tokens=False)
        if a != b:
            bad += 1
            if bad <= 3:
                print(f"note: {label} encodes {s[:60]!r} as {b[:12]}..., SentencePiece {a[:12]}...")
    return bad


def strings_of(tasks):
    out = []
    for header, docs in tasks.values():
        for d in docs:
            if header["kind"] == "rolling":
                out.append(d["text"])
            else:
                for c, x in d["requests"]:
                    n = len(c) - len(c.rstrip())
                    c, x = (c[:-n], c[-n:] + x) if n else (c, x)
                    out += [c, c + x, x]
    return out


def instances(header, docs):
    from lm_eval.api.instance import Instance

    reqs, owners = [], []
    for d in docs:
        if header["kind"] == "rolling":
            reqs.append(Instance("loglikelihood_rolling", d, (d["text"],), 0, (header["task"], d["doc_id"], 1)))
            owners.append(d["doc_id"])
        else:
            for i, (c, x) in enumerate(d["requests"]):
                reqs.append(Instance("loglikelihood", d, (c, x), i, (header["task"], d["doc_id"], 1)))
                owners.append(d["doc_id"])
    return reqs, owners


def group(owners, values, n):
    out = [[] for _ in range(n)]
    for o, v in zip(owners, values):
        out[o].append(v)
    return out


def llama_tokenizer(hf_dir):
    from transformers import LlamaTokenizer

    # legacy=True: encode is SentencePiece's own (the tokenizer.model export-hf copies), split only on the
    # special tokens' texts, which our task texts do not contain.
    return LlamaTokenizer(vocab_file=os.path.join(hf_dir, "tokenizer.model"), legacy=True, add_bos_token=True,
                          add_eos_token=False, clean_up_tokenization_spaces=False)


def rolling_windows(lm, text, max_length):
    from lm_eval import utils

    return [(None,) + w for w in map(utils.make_disjoint_window, utils.get_rolling_token_windows(
        token_list=lm.tok_encode(text), prefix_token=lm.prefix_token_id, max_seq_len=max_length, context_len=1))]


def run_hflm(lm, tasks, seq_length):
    """lm-eval's answers per task: (per-doc results, per-doc rolling windows or None)."""
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):  # HFLM's rolling progress bars
        return run_hflm_quietly(lm, tasks, seq_length)


def run_hflm_quietly(lm, tasks, seq_length):
    out = {}
    for task, (header, docs) in tasks.items():
        reqs, owners = instances(header, docs)
        if header["kind"] == "rolling":
            totals = lm.loglikelihood_rolling(reqs, disable_tqdm=True)
            windows = [lm._loglikelihood_tokens(rolling_windows(lm, d["text"], lm.max_length), disable_tqdm=True)
                       for d in docs]
            out[task] = (totals, windows)
        else:
            res = lm.loglikelihood(reqs, disable_tqdm=True)
            out[task] = (group(owners, res, len(docs)), None)
    return out


def quiet():
    import logging
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["TQDM_DISABLE"] = "1"
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import transformers

    transformers.logging.set_verbosity_error()


def cmd_hflm(args):
    quiet()
    import sentencepiece
    import torch
    from lm_eval.models.huggingface import HFLM

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    tasks = {t: read_task(p) for t, p in task_paths(args.tasks).items()}
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(args.hf, "tokenizer.model"))
    rep = Report()
    tok = llama_tokenizer(args.hf)
    strings = strings_of(tasks)
    bad = tokenizer_check(rep, tok, sp, strings, "LlamaTokenizer(legacy=True)")
    if bad:
        rep.fail(f"LlamaTokenizer(legacy=True) encodes {bad} of {len(strings)} strings unlike SentencePiece")
    print(f"check: LlamaTokenizer(legacy=True) = SentencePiece on {len(strings) - bad}/{len(strings)} strings")

    # Our rule: no BOS before a non-empty context (HFLM's add_bos_token=False).
    lm = HFLM(pretrained=args.hf, tokenizer=tok, add_bos_token=False, batch_size=8, max_length=args.seq_length,
              device="cpu", dtype="float32")
    assert lm.prefix_token_id == sp.bos_id(), (lm.prefix_token_id, sp.bos_id())
    theirs = run_hflm(lm, tasks, args.seq_length)
    for samples_dir, results_path in zip(args.samples, args.results):
        label = os.path.basename(samples_dir.rstrip("/"))
        results = json.load(open(results_path))
        for task, (header, docs) in tasks.items():
            ours = read_jsonl(os.path.join(samples_dir, task + ".jsonl"))
            per_doc, windows = theirs[task]
            compare_task(rep, label, header, docs, ours, results, per_doc, windows)

    # Informational, not asserted: what lm-eval 0.4.13 scores with its defaults, `--model hf --model_args
    # pretrained=HF_DIR`: AutoTokenizer's LlamaTokenizerFast, whose add_bos_token=True HFLM keeps
    # (add_bos_token=None: "the tokenizer's default"), so every context starts with BOS.
    try:
        info = lm_eval_defaults(args, tasks, sp, strings)
        print("note: lm-eval defaults (BOS prepended): " + json.dumps(info))
    except Exception as e:  # e.g. no protobuf for the fast tokenizer's conversion
        print(f"note: lm-eval with its defaults did not run: {e!r}"[:400])
    return rep.summary(add_bos_token=False)


def lm_eval_defaults(args, tasks, sp, strings):
    from lm_eval.models.huggingface import HFLM

    rep = Report()
    info = {}
    default = HFLM(pretrained=args.hf, batch_size=8, max_length=args.seq_length, device="cpu", dtype="float32")
    info["default_tokenizer"] = type(default.tokenizer).__name__
    info["default_tokenizer_mismatches"] = tokenizer_check(rep, default.tokenizer, sp, strings,
                                                           type(default.tokenizer).__name__)
    info["default_prepends_bos"] = default.tok_encode("abc")[:1] == [sp.bos_id()]
    dflt = run_hflm(default, tasks, args.seq_length)
    results = json.load(open(args.results[0]))
    diffs, acc_changes = [], {}
    for task, (header, docs) in tasks.items():
        per_doc, _ = dflt[task]
        if header["kind"] == "rolling":
            ours = read_jsonl(os.path.join(args.samples[0], task + ".jsonl"))
            diffs += [abs(sum(w[0] for w in o["resps"]) - t) for o, t in zip(sorted(ours, key=lambda s: s["doc_id"]), per_doc)]
        else:
            ours = {s["doc_id"]: s for s in read_jsonl(os.path.join(args.samples[0], task + ".jsonl"))}
            diffs += [abs(o[0] - t[0]) for d in docs for o, t in zip(ours[d["doc_id"]]["resps"], per_doc[d["doc_id"]])]
        _, agg = lm_eval_metrics(header["kind"], docs, per_doc)
        acc_changes[task] = {m: (round(results["results"][task][m + ",none"], 6), round(v, 6))
                             for m, v in agg.items() if not m.endswith("stderr")}
    info["default_max_abs_ll_diff"] = max(diffs)
    info["default_metrics_ours_vs_lm_eval_defaults"] = acc_changes
    return info


def cmd_generate(args):
    quiet()
    import sentencepiece
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)  # a tiny model decoding one token at a time: threads only add overhead
    model = AutoModelForCausalLM.from_pretrained(args.hf, dtype=torch.float32).eval()
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(args.hf, "tokenizer.model"))
    tok = llama_tokenizer(args.hf)
    rep = Report()
    n = 0
    runs = [(p, True) for p in args.ours_ignore_eos or []] + [(p, False) for p in args.ours_stop_at_eos or []]
    for path, ignore_eos in runs:
        for s in json.load(open(path))["samples"]:
            what = f"{os.path.basename(path)} prompt {s['prompt']!r}"
            if s["prompt_tokens"] != sp.encode(s["prompt"]) or s["prompt_tokens"] != tok.encode(s["prompt"], add_special_tokens=False):
                rep.fail(f"{what}: prompt tokens {s['prompt_tokens']} differ from SentencePiece's / LlamaTokenizer's")
            ids = torch.tensor([s["prompt_tokens"]])
            with torch.no_grad():
                out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=args.max_new_tokens, num_beams=1, temperature=None, top_p=None,
                                     top_k=None, eos_token_id=None if ignore_eos else sp.eos_id(),
                                     pad_token_id=sp.eos_id())
            theirs = out[0, ids.shape[1]:].tolist()
            if not ignore_eos and sp.eos_id() in theirs:
                theirs = theirs[:theirs.index(sp.eos_id()) + 1]
            ours = s["tokens"]
            n += 1
            rep.compared += len(ours)
            if ours != theirs:
                first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
                # the logit gap at the first difference (a near tie that rounding decides?)
                with torch.no_grad():
                    logits = model(torch.tensor([s["prompt_tokens"] + theirs[:first]])).logits[0, -1]
                top = torch.topk(logits, 2)
                rep.fail(f"{what}: ours {ours} transformers {theirs} (first difference at {first}; transformers' "
                         f"top two logits there {top.values.tolist()} for {top.indices.tolist()})")
            else:
                print(f"check: {what}: {len(ours)} tokens equal ({s['finish_reason']}): {sp.decode(ours)!r}")
    return rep.summary(prompts=n, compared_is="tokens")


def cmd_server(args):
    quiet()
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    tasks = {t: read_task(p) for t, p in task_paths(args.tasks).items()}
    # max_length = L + 1: the API model keeps the last max_length - 1 = L tokens of context + continuation (the
    # most a prompt of `prores serve` may hold); HFLM and prores eval keep L + 1 (L inputs).
    lm = LocalCompletionsAPI(base_url=args.url, model="prores", tokenizer_backend="remote", tokenized_requests=True,
                             max_length=args.seq_length + 1, num_concurrent=1, batch_size=1, max_retries=1)
    rep = Report()
    results = json.load(open(args.results))
    truncated_docs = {}
    for task, (header, docs) in tasks.items():
        reqs, owners = instances(header, docs)
        ours = read_jsonl(os.path.join(args.samples, task + ".jsonl"))
        if header["kind"] == "rolling":
            # local-completions rolls windows of max_length - 2 = L - 1 tokens, ours L: not comparable window by
            # window; the totals are compared with the tolerance of the different conditioning (printed).
            totals = lm.loglikelihood_rolling(reqs, disable_tqdm=True)
            by_id = {s["doc_id"]: s for s in ours}
            for d, t in zip(docs, totals):
                o = sum(w[0] for w in by_id[d["doc_id"]]["resps"])
                print(f"note: {task} doc {d['doc_id']}: rolling total ours {o!r} local-completions {t!r} "
                      f"(windows of {args.seq_length - 1} tokens there, {args.seq_length} here)")
            continue
        res = group(owners, lm.loglikelihood(reqs, disable_tqdm=True), len(docs))
        # Requests whose context + continuation exceed L tokens lose one more context token there: compare
        # those documents' values as notes, the rest exactly.
        by_id = {s["doc_id"]: s for s in ours}
        trunc = set()
        for d in docs:
            for c, x in d["requests"]:
                n = len(c) - len(c.rstrip())
                c, x = (c[:-n], c[-n:] + x) if n else (c, x)
                if len(lm.tok_encode(c + x)) + (1 if not c else 0) > args.seq_length:
                    trunc.add(d["doc_id"])
        truncated_docs[task] = sorted(trunc)
        keep = [d for d in docs if d["doc_id"] not in trunc]
        for d in docs:
            if d["doc_id"] in trunc:
                print(f"note: {task} doc {d['doc_id']} (truncated): ours {[r[0] for r in by_id[d['doc_id']]['resps']]} "
                      f"local-completions {[r[0] for r in res[d['doc_id']]]}")
        sub_header = dict(header, num_docs=len(keep))
        compare_task(rep, "serve", sub_header, [dict(d, doc_id=i) for i, d in enumerate(keep)],
                     [dict(by_id[d["doc_id"]], doc_id=i) for i, d in enumerate(keep)],
                     {"results": {task: {k: v for k, v in recompute(header, keep, by_id).items()}}},
                     [res[d["doc_id"]] for d in keep])
        _, agg = lm_eval_metrics(header["kind"], docs, res)
        full = {m: (round(results["results"][task][m + ",none"], 6), round(v, 6)) for m, v in agg.items()
                if not m.endswith("stderr")}
        same = all(a == b for m, (a, b) in full.items() if m.startswith("acc"))
        print(f"check: serve {task} over all {len(docs)} documents (ours, local-completions): {full}"
              f"{'' if same else '  <- accuracies differ (truncated documents)'}")
    return rep.summary(truncated_docs=truncated_docs)


def recompute(header, docs, by_id):
    """Our aggregate metrics over a subset of documents, from our sample records, as `results` keys."""
    resps = [by_id[d["doc_id"]]["resps"] for d in docs]
    _, agg = lm_eval_metrics(header["kind"], docs, resps)
    return {k + ",none": v for k, v in agg.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("out")
    t = sub.add_parser("tasks")
    t.add_argument("dir")
    t.add_argument("--tokenizer", required=True)
    t.add_argument("--seq-length", type=int, required=True)
    t.add_argument("--load", help="a checkpoint, to make some continuations its greedy ones (prores generate)")
    t.add_argument("--prores", default="prores", help="the prores executable")
    h = sub.add_parser("hflm")
    h.add_argument("--hf", required=True)
    h.add_argument("--tasks", required=True)
    h.add_argument("--samples", action="append", required=True)
    h.add_argument("--results", action="append", required=True)
    h.add_argument("--seq-length", type=int, required=True)
    g = sub.add_parser("generate")
    g.add_argument("--hf", required=True)
    g.add_argument("--ours-ignore-eos", action="append", help="output of prores generate --ignore-eos")
    g.add_argument("--ours-stop-at-eos", action="append", help="output of prores generate without --ignore-eos")
    g.add_argument("--max-new-tokens", type=int, required=True)
    s = sub.add_parser("server")
    s.add_argument("--url", required=True)
    s.add_argument("--tasks", required=True)
    s.add_argument("--samples", required=True)
    s.add_argument("--results", required=True)
    s.add_argument("--seq-length", type=int, required=True)
    args = p.parse_args()
    return {"corpus": cmd_corpus, "tasks": cmd_tasks, "hflm": cmd_hflm, "generate": cmd_generate,
            "server": cmd_server}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
