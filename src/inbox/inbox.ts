import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { InvalidInputError, isRelayMeshError, type Problem } from "../errors.js";
import { PRIORITIES, type Priority } from "../model/workflow.js";
import { ensureDir } from "../ops/dirs.js";

/** What the inbox needs from the engine: validate-and-submit, idempotent by key. */
export interface InboxSubmitter {
  submitWorkflow(spec: unknown, options: { idempotencyKey: string; source: string }): Promise<{ taskId: string; created: boolean }>;
}

export interface InboxPassResult {
  /** Files submitted (or found already submitted) and moved to done/. */
  submitted: { file: string; taskId: string; created: boolean }[];
  /** Invalid files moved to dead/ beside an `<name>.error.json`. */
  dead: { file: string; problems: Problem[] }[];
}

/**
 * The drop folders `<root>/inbox/{high,normal,low}/`. A file is claimed by an atomic rename
 * into `processing/` (so two processes never take the same file), submitted with its content
 * hash as idempotency key, then moved to `done/` — or to `dead/` with an error file. Files left
 * in `processing/` by a crash are examined again by the next pass; the key makes that safe.
 */
export class Inbox {
  readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, "inbox");
  }

  /** Creates the folders. Idempotent. */
  ensure(): void {
    for (const sub of [...PRIORITIES, "processing", "done", "dead"]) ensureDir(join(this.dir, sub), "inbox folder");
  }

  /** Claims every dropped file, then submits everything in processing/. */
  async pass(submitter: InboxSubmitter): Promise<InboxPassResult> {
    this.ensure();
    for (const priority of PRIORITIES) {
      for (const name of this.#jsonFiles(join(this.dir, priority))) {
        try {
          renameSync(join(this.dir, priority, name), join(this.dir, "processing", `${priority}__${name}`));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error; // another process claimed it
        }
      }
    }
    const result: InboxPassResult = { submitted: [], dead: [] };
    for (const claimed of this.#jsonFiles(join(this.dir, "processing"))) {
      await this.#process(claimed, submitter, result);
    }
    return result;
  }

  async #process(claimed: string, submitter: InboxSubmitter, result: InboxPassResult): Promise<void> {
    const path = join(this.dir, "processing", claimed);
    const sep = claimed.indexOf("__");
    const priority = claimed.slice(0, sep) as Priority;
    const name = claimed.slice(sep + 2);
    const source = join("inbox", priority, name);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return; // finished by another process
      throw error;
    }
    try {
      let spec: unknown;
      try {
        spec = JSON.parse(text);
      } catch (cause) {
        throw new InvalidInputError([{ where: source, message: `invalid JSON: ${(cause as Error).message}` }]);
      }
      if (spec && typeof spec === "object" && !Array.isArray(spec) && !("priority" in spec)) spec = { ...spec, priority };
      const key = `inbox:sha256:${createHash("sha256").update(text).digest("hex")}`;
      const { taskId, created } = await submitter.submitWorkflow(spec, { idempotencyKey: key, source });
      this.#moveOut(path, "done", name);
      result.submitted.push({ file: name, taskId, created });
    } catch (error) {
      if (!isRelayMeshError(error) || !(error instanceof InvalidInputError)) throw error;
      const deadName = this.#moveOut(path, "dead", name);
      if (deadName) {
        writeFileSync(join(this.dir, "dead", `${deadName}.error.json`), `${JSON.stringify({
          file: source, rejectedAtMs: Date.now(), code: error.code, problems: error.problems,
        }, null, 2)}\n`);
      }
      result.dead.push({ file: name, problems: error.problems });
    }
  }

  /** Moves a processed file out; returns the name it got, or null if another process moved it first. */
  #moveOut(path: string, folder: "done" | "dead", name: string): string | null {
    let target = name;
    if (existsSync(join(this.dir, folder, target))) target = `${basename(name, ".json")}.${Date.now()}.json`;
    try {
      renameSync(path, join(this.dir, folder, target));
      return target;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }

  #jsonFiles(dir: string): string[] {
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((n) => n.endsWith(".json") && !n.startsWith(".")).sort();
  }
}
