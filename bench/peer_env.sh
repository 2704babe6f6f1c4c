#!/usr/bin/env bash
# Creates bench/.venv (git-ignored) for bench/gemm_peer.py when it is missing,
# with pinned NumPy and threadpoolctl from plain PyPI, and tries PyPI's torch
# wheel (large: it pulls the nvidia-* runtime packages). A torch install that
# fails is skipped: gemm_peer.py then times NumPy alone.
#
#   bash bench/peer_env.sh            # NumPy + threadpoolctl, then try torch
#   PEER_TORCH=0 bash bench/peer_env.sh   # never try torch
set -euo pipefail
cd "$(dirname "$0")"

NUMPY_VERSION=2.4.6
THREADPOOLCTL_VERSION=3.8.0
TORCH_VERSION=2.15.0

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
PY=.venv/bin/python

if ! "$PY" -c "import numpy, threadpoolctl, sys; sys.exit(numpy.__version__ != '$NUMPY_VERSION')" 2>/dev/null; then
    "$PY" -m pip install --quiet "numpy==$NUMPY_VERSION" "threadpoolctl==$THREADPOOLCTL_VERSION"
fi

if [ "${PEER_TORCH:-1}" != 0 ] && ! "$PY" -c "import torch" 2>/dev/null; then
    if ! "$PY" -m pip install --quiet "torch==$TORCH_VERSION"; then
        echo "peer_env: torch==$TORCH_VERSION did not install from PyPI; skipping torch" >&2
    fi
fi

"$PY" - <<'PY'
import numpy
print("numpy", numpy.__version__)
try:
    import torch
    print("torch", torch.__version__)
except Exception as e:  # noqa: BLE001
    print("torch: not available (%s)" % type(e).__name__)
PY
