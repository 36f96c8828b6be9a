import { ErrorCode, isRelayMeshError } from "../../errors.js";
import type { HealthCheck } from "../../store/types.js";
import { ExitCode } from "../errors.js";
import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { table } from "../format.js";

export default async function health(globals: GlobalOptions, flags: { nodeId?: string }): Promise<CommandResult> {
  let result: { ok: boolean; checks: HealthCheck[] };
  try {
    result = await withMesh(globals, { work: false }, (mesh) => mesh.health(flags.nodeId !== undefined ? { nodeId: flags.nodeId } : {}));
  } catch (error) {
    // A store that cannot even be opened is the answer, not a failure of the command.
    if (!isRelayMeshError(error) || error.code !== ErrorCode.STORE) throw error;
    result = { ok: false, checks: [{ name: "store-open", ok: false, detail: error.message }] };
  }
  return {
    data: result,
    human: `${table(["CHECK", "OK", "DETAIL"], result.checks.map((c) => [c.name, c.ok ? "ok" : "FAIL", c.detail]))}\n${result.ok ? "healthy" : "UNHEALTHY"}`,
    exitCode: result.ok ? ExitCode.OK : ExitCode.FAILED,
  };
}
