import { existsSync, readFileSync } from "node:fs";
import { InvalidInputError } from "../errors.js";

/** Parses a JSON file; undefined when it does not exist; InvalidInputError naming the file when it is not JSON. */
export function readJsonFile(path: string): unknown {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, "utf8");
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new InvalidInputError([{ where: path, message: `invalid JSON: ${(cause as Error).message}` }], { cause });
  }
}
