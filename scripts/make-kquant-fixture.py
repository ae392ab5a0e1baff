"""Writes test/fixtures/kquants.json: random Q4_K / Q5_K / Q6_K blocks and their values as
dequantized by gguf-py (the GGUF reference implementation; `pip install gguf`). Run once; the tests
read only the JSON. Scales are drawn as small finite f16 values so no block decodes to inf/NaN."""
import base64, json
import numpy as np
from gguf import GGMLQuantizationType as T, GGML_QUANT_SIZES, quants

rng = np.random.default_rng(20261122)
out = {}
for name in ("Q4_K", "Q5_K", "Q6_K"):
    qtype = T[name]
    _, block_bytes = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(3, block_bytes), dtype=np.uint8)
    scales = rng.uniform(-0.05, 0.05, size=(3, 2)).astype(np.float16).view(np.uint8).reshape(3, 4)
    if name == "Q6_K":
        blocks[:, -2:] = scales[:, :2]  # d is the block's last field
    else:
        blocks[:, :4] = scales  # d, dmin lead the block
    values = quants.dequantize(blocks.reshape(-1), qtype).astype(np.float32)
    out[name] = {
        "blockBytes": block_bytes,
        "bytes": base64.b64encode(blocks.tobytes()).decode(),
        "values": base64.b64encode(values.tobytes()).decode(),
    }
with open("test/fixtures/kquants.json", "w") as f:
    json.dump(out, f, indent=1)
