#!/usr/bin/env bash
# GPU measurements in one run (under 8 minutes on one data-centre GPU): faiss all-pairs search at 1M
# descriptors (time, recall against exact), the face detector and embedder in batches (faces/s), and
# ResNet-50 training at 112x112 in bf16 + channels_last beside fp32 (images/s). Results: bench/results/gpu.md.
#
#   bash bench/gpu.sh              # from the repository root; PYTHON=... to choose the interpreter
#   bash bench/gpu.sh --tiny       # every part at a small size (checks the script on a CPU machine)
#   PARTS="search train" bash bench/gpu.sh   # only some parts
#
# Needs the project's dependencies with faiss-gpu (`pip install -e .[gpu]`); nothing is downloaded.
# Each part has its own time limit, so one slow part cannot take the whole budget.
set -u -o pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-bench/out/gpu}"
mkdir -p "$OUT"

"$PYTHON" - <<'EOF' || { echo "missing dependencies: install the project with 'pip install -e .[gpu]'"; exit 1; }
import faiss, torch, dlib, face_recognition_models  # noqa: F401
print(f"torch {torch.__version__}, CUDA {torch.cuda.is_available()}, faiss GPUs {faiss.get_num_gpus()}, "
      f"dlib CUDA {dlib.DLIB_USE_CUDA}")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv

status=0
for part in ${PARTS:-search embed detect train}; do
  limit=150
  [ "$part" = detect ] && limit=60
  [ "${1:-}" = "--tiny" ] && limit=300
  echo "== $part (limit ${limit}s)"
  timeout "$limit" "$PYTHON" bench/gpu.py "$part" "$@" 2>&1 | tee "$OUT/$part.txt"
  code=$?
  if [ "$code" -ne 0 ]; then
    echo "| $part | | did not finish (exit $code) | |" | tee -a "$OUT/$part.txt"
    status=1
  fi
done
echo
echo "| part | workload | speed | detail |"
echo "|---|---|---|---|"
grep -h '^| \(search\|embed\|detect\|train\) ' "$OUT"/*.txt | sort -u
exit $status
