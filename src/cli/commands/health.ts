import { ExitCode } from "../errors.js";
import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { table } from "../format.js";

export default async function health(globals: GlobalOptions, flags: { nodeId?: string }): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.health(flags.nodeId !== undefined ? { nodeId: flags.nodeId } : {});
    return {
      data: result,
      human: `${table(["CHECK", "OK", "DETAIL"], result.checks.map((c) => [c.name, c.ok ? "ok" : "FAIL", c.detail]))}\n${result.ok ? "healthy" : "UNHEALTHY"}`,
      exitCode: result.ok ? ExitCode.OK : ExitCode.FAILED,
    };
  });
}
