#!/bin/sh
# The bundled demo model's whole recipe (docs/demo-model.md): corpus, vocabulary, teacher,
# teacher targets, distilled student, two students of the same size to compare it with, GGUF.
# Deterministic for a given machine (seeded).
# Needs Debian's bible-kjv and sentencepiece (installed if missing). Takes about 45 minutes on 2 cores.
set -e
RANGE="${RANGE:-Gen1:1-Rut4:22}"
TEACHER_STEPS="${TEACHER_STEPS:-500}"
STUDENT_STEPS="${STUDENT_STEPS:-600}"
OUT="${OUT:-runs/demo}"
G="node --import tsx src/cli/main.ts"
mkdir -p data "$OUT"
[ -f data/kjv.txt ] || sh scripts/prepare-kjv.sh data/kjv.txt
command -v spm_train >/dev/null 2>&1 || apt-get install -y -qq sentencepiece >/dev/null
# 1. A 4000-piece SentencePiece BPE vocabulary of the whole KJV, in Gemma's layout.
spm_train --input=data/kjv.txt --model_prefix=data/kjv-spm --vocab_size=4000 --model_type=bpe \
  --character_coverage=1.0 --byte_fallback=true --add_dummy_prefix=false --split_digits=true \
  --normalization_rule_name=identity --remove_extra_whitespaces=false --num_threads=1 \
  --pad_id=0 --eos_id=1 --bos_id=2 --unk_id=3 --pad_piece="<pad>" --eos_piece="<eos>" --bos_piece="<bos>" --unk_piece="<unk>" \
  --user_defined_symbols="<start_of_turn>,<end_of_turn>" >/dev/null 2>&1
node --import tsx scripts/spm-vocab-to-gguf.ts data/kjv-spm.vocab data/kjv-vocab.gguf
# 2. The training text: Genesis to Ruth.
sh scripts/prepare-kjv.sh data/kjv-train.txt "$RANGE"
COMMON="--tokenizer data/kjv-vocab.gguf --data data/kjv-train.txt --seq-len 128 --batch 8 --lr 0.002 --warmup 50 --eval-every 100 --eval-sequences 64 --seed 1"
# 3. The teacher, by next-token prediction.
$G train --config scripts/demo-model/teacher.json $COMMON --steps "$TEACHER_STEPS" --out "$OUT/teacher"
# 4. Its top-32 distributions over the training text.
$G teacher-targets --teacher "$OUT/teacher" --data data/kjv-train.txt --seq-len 128 --top-k 32 --out "$OUT/targets"
# 5. The student, by distillation mixed half and half with next-token loss (docs/demo-model.md: it
#    beats pure distillation, alpha 1, and the same student trained by next-token prediction alone).
$G train --config scripts/demo-model/student.json $COMMON --steps "$STUDENT_STEPS" --targets "$OUT/targets" --alpha 0.5 --out "$OUT/student"
# 5b. What it is measured against: the same student shape, steps and seed by pure distillation,
#     and by next-token prediction.
$G train --config scripts/demo-model/student.json $COMMON --steps "$STUDENT_STEPS" --targets "$OUT/targets" --alpha 1 --out "$OUT/student-alpha-1"
$G train --config scripts/demo-model/student.json $COMMON --steps "$STUDENT_STEPS" --out "$OUT/student-next-token"
# 6. The shipped file: the student and its vocabulary in one float32 GGUF; docs and loss plot.
node --import tsx scripts/export-demo-model.ts "$OUT" models/gemma-ts-kjv.gguf
