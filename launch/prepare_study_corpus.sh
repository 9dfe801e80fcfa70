#!/usr/bin/env bash
# The depth study's corpus (docs/depth-study.md): the English documentation that Debian packages ship as text,
# about 37 MB, one document per source file:
#   - the Linux kernel's Documentation/ (reStructuredText and plain text, linux-doc-6.1; translations left out),
#   - the Python 3.11 documentation's reStructuredText sources (python3.11-doc),
#   - the fortunes (data/fortunes.txt, launch/prepare_corpus.sh), one fortune per document.
# Writes data/study/corpus.jsonl (the documents in a fixed random order, so that --split's contiguous ranges each
# hold every source), trains an 8000-piece SentencePiece BPE tokenizer on it
# (data/study/bpe8k.model) and tokenizes it into the Megatron indexed dataset data/study/corpus_bpe8k.{bin,idx}.
# Installs the two documentation packages when missing; each step is skipped when its output exists.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(linux-doc-6.1 python3.11-doc)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "prepare_study_corpus: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash launch/prepare_corpus.sh
mkdir -p data/study
corpus=data/study/corpus.jsonl
if [ ! -s "$corpus" ]; then
  /usr/bin/python3 - "$corpus" <<'EOF'
import gzip, json, pathlib, random, sys

out_path = pathlib.Path(sys.argv[1])
kernel = pathlib.Path("/usr/share/doc/linux-doc-6.1/Documentation")
python_docs = pathlib.Path("/usr/share/doc/python3.11/html/_sources")
sources = sorted(p for p in kernel.rglob("*") if p.name.endswith((".rst.gz", ".txt.gz", ".rst", ".txt"))
                 and "translations" not in p.parts)
sources += sorted(python_docs.rglob("*.txt"))
documents = []
for path in sources:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    documents.append(raw.decode("utf-8", errors="replace").strip())
fortunes = pathlib.Path("data/fortunes.txt").read_text(encoding="utf-8", errors="replace")
documents += [block.strip() for block in fortunes.split("\n\n")]
documents = [d for d in documents if d]
# --split cuts the documents in file order: shuffle them (fixed seed) so that every split holds every source.
random.Random(20261207).shuffle(documents)
with open(str(out_path) + ".tmp", "w", encoding="utf-8") as out:
    for text in documents:
        out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
pathlib.Path(str(out_path) + ".tmp").rename(out_path)
print(f"prepare_study_corpus: wrote {out_path}: {len(documents)} documents, {out_path.stat().st_size} bytes")
EOF
fi
tokenizer=data/study/bpe8k
if [ ! -s "$tokenizer.model" ]; then
  ./build/prores data train-tokenizer --input "$corpus" --vocab-size 8000 --model-prefix "$tokenizer"
fi
if [ ! -s data/study/corpus_bpe8k.idx ] || [ ! -s data/study/corpus_bpe8k.bin ]; then
  ./build/prores data preprocess --input "$corpus" --tokenizer-model "$tokenizer.model" \
    --output-prefix data/study/corpus_bpe8k
fi
