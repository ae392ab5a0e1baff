/**
 * `npm run lint`'s second half: no line of src/ over 140 characters (Biome's formatter wraps code
 * at 140 but leaves long strings and comments alone). Prints each offending line; exit 1 if any.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const LIMIT = 140;
const files = execFileSync("git", ["ls-files", "src/*.ts", "assembly/*.ts"], { encoding: "utf8" }).split("\n").filter(Boolean);
let long = 0;
for (const file of files) {
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (line.length > LIMIT) {
        long++;
        console.error(`${file}:${i + 1}: ${line.length} characters (limit ${LIMIT})`);
      }
    });
}
if (long > 0) process.exit(1);
console.log(`${files.length} files, no line over ${LIMIT} characters`);
