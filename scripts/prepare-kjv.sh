#!/bin/sh
# Prepares a public-domain English corpus offline and reproducibly: the King James Version from
# Debian's bible-kjv packages (the text is public domain). Writes plain verse text, one verse per
# line, without the "Ge1:1" references, to $1 (default data/kjv.txt). Range: $2 (default whole Bible).
set -e
out="${1:-data/kjv.txt}"
range="${2:-Gen1:1-Rev22:21}"
if ! command -v bible >/dev/null 2>&1; then
  echo "installing Debian's bible-kjv (the text and its reader)" >&2
  apt-get install -y -qq bible-kjv >/dev/null
fi
mkdir -p "$(dirname "$out")"
echo "" | bible -f "$range" | sed -n 's/^[1-3]\{0,1\}[A-Za-z]*[0-9]*:[0-9]* //p' > "$out"
echo "wrote $(wc -c < "$out") bytes, $(wc -l < "$out") verses to $out" >&2
