// Runs the compiled test files (dist/test/**/*.test.js) with node's test runner.
// Files are listed here rather than globbed by --test, whose argument syntax differs across Node versions.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith(".test.js") ? [path] : [];
  });
}

const filter = process.argv[2];
const files = find("dist/test").filter((f) => !filter || f.includes(filter)).sort();
if (files.length === 0) {
  console.error(`no test files found under dist/test${filter ? ` matching "${filter}"` : ""}; run "npm run build" first`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(result.status ?? 1);
