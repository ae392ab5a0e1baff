import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { modelAddress } from "../../src/browser/model-address.js";

describe("the page's model address", () => {
  const page = "http://127.0.0.1:8081/";
  it("takes URLs and page-relative paths as they are", () => {
    assert.equal(modelAddress("https://example.org/m/x.gguf", page), "https://example.org/m/x.gguf");
    assert.equal(modelAddress(" /models/kjv.gguf ", page), "http://127.0.0.1:8081/models/kjv.gguf");
    assert.equal(modelAddress("./models/tiny/", page), "http://127.0.0.1:8081/models/tiny/");
    assert.equal(modelAddress("kjv.gguf", page), "http://127.0.0.1:8081/kjv.gguf");
  });

  it("turns Hub repo ids and their GGUF files into resolve URLs", () => {
    assert.equal(modelAddress("google/gemma-2-2b-it", page), "https://huggingface.co/google/gemma-2-2b-it/resolve/main/");
    assert.equal(modelAddress("google/gemma-2-2b-it@v1.0", page), "https://huggingface.co/google/gemma-2-2b-it/resolve/v1.0/");
    assert.equal(
      modelAddress("org/repo-GGUF/sub dir/model-Q4_0.gguf", page),
      "https://huggingface.co/org/repo-GGUF/resolve/main/sub%20dir/model-Q4_0.gguf",
    );
    assert.equal(modelAddress("org/repo/m.gguf@abc", page, "http://hub.local"), "http://hub.local/org/repo/resolve/abc/m.gguf");
  });

  it("throws on text that is no URL at all", () => {
    assert.throws(() => modelAddress("http://[bad", page));
  });
});
