import { z } from "zod";
import { NonRetryableError, RelayMeshError, ErrorCode } from "../errors.js";
import type { AgentFunction } from "./context.js";

/** `sleep` input: how long to wait. */
export const SleepInputSchema = z.strictObject({ ms: z.number().int().min(0).max(86_400_000) });

const echo: AgentFunction = ({ input }) => input;

/** Returns what it received, dependencies' outputs included: the simplest step that uses `deps`. */
const collect: AgentFunction = ({ input, deps }) => ({ input, deps });

/** Takes any input; a string `input.message` becomes the error message. */
const fail: AgentFunction = ({ input, attempt }) => {
  const given = typeof input === "object" && input !== null && Object.hasOwn(input, "message") ? (input as { message: unknown }).message : undefined;
  const message = typeof given === "string" ? given : "the fail agent always fails";
  throw new RelayMeshError(ErrorCode.AGENT_FAILED, `${message} (attempt ${attempt})`);
};

const sleep: AgentFunction = ({ input, signal }) => {
  const parsed = SleepInputSchema.safeParse(input);
  if (!parsed.success) throw new NonRetryableError(`sleep agent: input must be {"ms": <integer>}: ${z.prettifyError(parsed.error)}`);
  const ms = parsed.data.ms;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => { signal.removeEventListener("abort", onAbort); resolve({ sleptMs: ms }); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal.reason); };
    signal.addEventListener("abort", onAbort, { once: true });
  });
};

/** The built-in agents and the input each accepts (checked at submission). */
export const BUILTIN_AGENTS: ReadonlyMap<string, { fn: AgentFunction; inputSchema?: z.ZodType }> = new Map<string, { fn: AgentFunction; inputSchema?: z.ZodType }>([
  ["echo", { fn: echo }],
  ["collect", { fn: collect }],
  ["fail", { fn: fail }],
  ["sleep", { fn: sleep, inputSchema: SleepInputSchema }],
]);
