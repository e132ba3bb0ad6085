#!/usr/bin/env bash
# Renders rails.conf.template: render.sh KEY=VALUE... < rails.conf.template > nginx.conf
# (the Rust parity tests do the same substitution themselves). Fails on a placeholder left
# unsubstituted.
set -euo pipefail
template=${TEMPLATE:-$(dirname "$0")/rails.conf.template}
python3 - "$template" "$@" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for kv in sys.argv[2:]:
    k, _, v = kv.partition("=")
    text = text.replace("{{%s}}" % k, v)
# Placeholders only count outside comments.
left = sorted({m for line in text.splitlines() if not line.lstrip().startswith("#")
               for m in re.findall(r"\{\{[A-Z_]+\}\}", line)})
if left:
    sys.exit("render.sh: unsubstituted: " + " ".join(left))
sys.stdout.write(text)
PY
