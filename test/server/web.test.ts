import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BUNDLED_MODEL } from "../../src/bundled.js";
import { parseRange, pathInside } from "../../src/server/static-files.js";
import { listServedModels, startWebServer, type RunningWebServer } from "../../src/server/web.js";
import { tempDir } from "../helpers/temp.js";

describe("static files", () => {
  it("parses single byte ranges and refuses unsatisfiable ones", () => {
    assert.deepEqual(parseRange("bytes=0-0", 10), [0, 0]);
    assert.deepEqual(parseRange("bytes=2-", 10), [2, 9]);
    assert.deepEqual(parseRange("bytes=5-100", 10), [5, 9]);
    assert.deepEqual(parseRange("bytes=-3", 10), [7, 9]);
    assert.equal(parseRange("bytes=10-12", 10), "unsatisfiable");
    assert.equal(parseRange("bytes=4-2", 10), "unsatisfiable");
    assert.equal(parseRange(undefined, 10), null);
    assert.equal(parseRange("bytes=0-1,4-5", 10), null, "multiple ranges: whole file");
  });

  it("keeps paths inside their root", () => {
    assert.equal(pathInside("/srv/m", "a/b.gguf"), "/srv/m/a/b.gguf");
    assert.equal(pathInside("/srv/m", "a%20b.gguf"), "/srv/m/a b.gguf");
    for (const bad of ["../x", "a/../../x", "%2e%2e/x", "a%2Fb", "%E0%A4%A", "a%00b"]) assert.equal(pathInside("/srv/m", bad), null, bad);
  });
});

describe("gemma-ts web server", () => {
  let models: string;
  let page: string;
  let server: RunningWebServer;

  before(async () => {
    models = tempDir("gemma-web");
    copyFileSync(BUNDLED_MODEL, join(models, "kjv.gguf"));
    mkdirSync(join(models, "folder"));
    writeFileSync(join(models, "folder", "config.json"), "{}");
    writeFileSync(join(models, "notes.txt"), "not a model");
    page = tempDir("gemma-page");
    writeFileSync(join(page, "index.html"), "<!doctype html><title>t</title>");
    server = await startWebServer({ modelsDir: models, pageDir: page, port: 0 });
  });
  after(() => server.close());

  it("sends the cross-origin isolation headers with the page and the models", async () => {
    for (const path of ["", "models/kjv.gguf", "models/index.json"]) {
      const response = await fetch(`${server.url}${path}`, { method: path.endsWith(".gguf") ? "HEAD" : "GET" });
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get("cross-origin-opener-policy"), "same-origin", path);
      assert.equal(response.headers.get("cross-origin-embedder-policy"), "require-corp", path);
    }
    assert.match((await fetch(server.url)).headers.get("content-type")!, /text\/html/);
  });

  it("lists .gguf files and checkpoint folders", async () => {
    const listed = await (await fetch(`${server.url}models/index.json`)).json();
    assert.deepEqual(listed, await listServedModels(models));
    assert.deepEqual(
      listed.map((m: { url: string }) => m.url),
      ["models/folder/", "models/kjv.gguf"],
    );
  });

  it("answers range requests with 206, and 416 past the end", async () => {
    const part = await fetch(`${server.url}models/kjv.gguf`, { headers: { Range: "bytes=0-3" } });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), "GGUF");
    assert.match(part.headers.get("content-range")!, /^bytes 0-3\/\d+$/);
    const past = await fetch(`${server.url}models/kjv.gguf`, { headers: { Range: "bytes=99999999-" } });
    assert.equal(past.status, 416);
  });

  it("refuses paths outside its folders and reports a missing page build", async () => {
    assert.equal((await fetch(`${server.url}models/..%2F..%2Fetc%2Fpasswd`)).status, 400);
    assert.equal((await fetch(`${server.url}models/missing.gguf`)).status, 404);
    const unbuilt = await startWebServer({ modelsDir: models, pageDir: join(page, "nope"), port: 0, isolate: false });
    try {
      const response = await fetch(unbuilt.url);
      assert.equal(response.status, 500);
      assert.match(await response.text(), /npm run build/);
      assert.equal(response.headers.get("cross-origin-opener-policy"), null);
    } finally {
      await unbuilt.close();
    }
  });
});
