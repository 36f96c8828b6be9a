import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ErrorCode, InvalidOptionsError, RelayMeshError } from "../errors.js";

/** errno codes that say the environment (permissions, space, a read-only disk) is at fault, not the path given. */
const ENVIRONMENT_CODES = new Set(["EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EIO", "EMFILE", "ENFILE"]);

/**
 * Creates the folder `dir` and its missing parents, one level at a time (Node's recursive mkdir
 * spins for ever under /proc). `label` names it in errors: a path that cannot be a folder is an
 * InvalidOptionsError (exit 2), an environment that refuses it a RELAYMESH_ERR_ENVIRONMENT error (exit 1).
 */
export function ensureDir(dir: string, label: string): void {
  const missing: string[] = [];
  for (let p = resolve(dir); ; p = dirname(p)) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== "ENOENT") throw dirError(label, dir, p, cause);
      missing.push(p);
      if (dirname(p) === p) break;
      continue;
    }
    if (!isDir) throw new InvalidOptionsError(`${label} ${dir}: ${p} exists and is not a folder`);
    break;
  }
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === "EEXIST" && statSync(p).isDirectory()) continue;
      throw dirError(label, dir, p, cause);
    }
  }
}

/** The error for a file system call on `path` that failed, classified as above. */
export function fileError(label: string, path: string, cause: unknown): RelayMeshError {
  const code = (cause as NodeJS.ErrnoException).code ?? "";
  const message = `${label} ${path}: ${(cause as Error).message}`;
  return ENVIRONMENT_CODES.has(code)
    ? new RelayMeshError(ErrorCode.ENVIRONMENT, message, { cause })
    : new InvalidOptionsError(message, { cause });
}

function dirError(label: string, dir: string, at: string, cause: unknown): RelayMeshError {
  const e = cause as NodeJS.ErrnoException;
  return fileError(label, dir, Object.assign(new Error(`cannot create ${at} (${e.code ?? e.message})`), { code: e.code }));
}
