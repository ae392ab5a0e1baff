/**
 * `npm run build:wasm`: compiles assembly/kernels.ts four ways: plain SIMD or relaxed SIMD
 * (RELAXED=1: the int8 dot products of relaxed SIMD), each single-threaded or on shared memory
 * for the worker pool. The backend picks the relaxed build where the engine validates it.
 */
import asc from "assemblyscript/asc";

const COMMON = [
  "assembly/kernels.ts",
  "--enable",
  "simd",
  "--optimizeLevel",
  "3",
  "--noAssert",
  "--runtime",
  "stub",
  "--importMemory",
  "--initialMemory",
  "1",
];
const THREADED = ["--enable", "threads", "--sharedMemory", "--maximumMemory", "65536"];

for (const relaxed of [false, true]) {
  for (const threaded of [false, true]) {
    const name = `kernels${relaxed ? "-relaxed" : ""}${threaded ? "-mt" : ""}.wasm`;
    const flags = [
      ...COMMON,
      "--use",
      `RELAXED=${relaxed ? 1 : 0}`,
      ...(relaxed ? ["--enable", "relaxed-simd"] : []),
      ...(threaded ? THREADED : []),
    ];
    const { error, stderr } = await asc.main([...flags, "--outFile", `wasm/${name}`]);
    if (error) {
      console.error(stderr.toString());
      throw new Error(`asc failed for wasm/${name}: ${error.message}`);
    }
    console.log(`wasm/${name}`);
  }
}
