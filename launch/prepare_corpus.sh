#!/usr/bin/env bash
# Builds the default corpus data/fortunes.txt from the Debian `fortunes` package (2.5 MB of English
# text); skipped when the file already exists. The trainer holds out validation data with --split.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/fortunes.txt
[ -s "$out" ] && exit 0
mkdir -p data
src=/usr/share/games/fortunes
[ -d "$src" ] || { echo "prepare_corpus: $src missing (apt-get install fortunes)" >&2; exit 1; }
find "$src" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort | xargs cat > "$out.tmp"
mv "$out.tmp" "$out"
echo "prepare_corpus: wrote $out ($(wc -c < "$out") bytes)"
