#!/bin/bash
# Fill REPO/.gpujob for one device call: `stage_gpujob.sh REPO SHARDS WHEELS [--base] [SET ...] [--init PREFIX]`.
#   --base      also copy what a fresh machine needs: code, wheels, Lite0 weights, the validation set
#               (code is always refreshed; it is small)
#   SET ...     shard set folders of SHARDS to send this call (e.g. s128_00 s128_01)
#   --init P    a generator to resume from (P_enc.pth and P_dec.pth), for a fresh machine
# Shard sets of an earlier call are removed from .gpujob (they are already in /tmp on a warm machine).
set -e
REPO=$1; SHARDS=$2; WHEELS=$3; shift 3
HERE=$(cd "$(dirname "$0")/../.." && pwd)
J=$REPO/.gpujob
grep -qx '/.gpujob/' $REPO/.git/info/exclude 2>/dev/null || { mkdir -p $REPO/.git/info; echo '/.gpujob/' >> $REPO/.git/info/exclude; }
rm -rf $J/data $J/init $J/whl $J/lite0_fp16.safetensors
mkdir -p $J/data $J/benchmarks
rm -rf $J/colorizer_lib $J/benchmarks/train_v2
(cd $HERE && tar cf - --exclude=weights --exclude=__pycache__ colorizer_lib benchmarks/train_v2) | tar xf - -C $J
cp $HERE/benchmarks/train_v2/gpu_job.sh $J/job.sh
while [ $# -gt 0 ]; do
  case $1 in
    --base) mkdir -p $J/whl; cp $WHEELS/*.whl $J/whl/; cp $WHEELS/lite0_fp16.safetensors $J/; cp -r $SHARDS/valid $J/data/;;
    --init) shift; mkdir -p $J/init; cp $1_enc.pth $1_dec.pth $J/init/;;
    *) cp -r $SHARDS/$1 $J/data/;;
  esac
  shift
done
du -sh $J; du -sh --apparent-size $J
