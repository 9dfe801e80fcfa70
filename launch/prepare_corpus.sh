#!/usr/bin/env bash
# Builds the default corpus from the Debian `fortunes` package (2.5 MB of English text):
#   data/fortunes.txt   one fortune per document (documents separated by blank lines)
# Skipped when the file already exists. The trainer holds out validation data with --split.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/fortunes.txt
[ -s "$out" ] && exit 0
mkdir -p data
src=/usr/share/games/fortunes
[ -d "$src" ] || { echo "prepare_corpus: $src missing (apt-get install fortunes)" >&2; exit 1; }
# Fortune files separate entries with a line holding only '%': make that a blank line.
find "$src" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort | xargs cat | sed 's/^%$//' > "$out.tmp"
mv "$out.tmp" "$out"
echo "prepare_corpus: wrote $out ($(wc -c < "$out") bytes)"
