import { ExitCode, ExitError } from "../errors.js";
import { intOption, jsonOrString, withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { brief, table, time } from "../format.js";

export interface KvFlags {
  namespace?: string;
  prefix?: string;
  limit?: string;
}

const DEFAULT_NAMESPACE = "default";

/** `kv get|put|list|delete [--namespace NS] KEY [VALUE]`: the checkpoint store, for operators. */
export default async function kv(globals: GlobalOptions, action: string, key: string | undefined, value: string | undefined, flags: KvFlags): Promise<CommandResult> {
  const namespace = flags.namespace ?? DEFAULT_NAMESPACE;
  const need = (what: string, v: string | undefined): string => {
    if (v === undefined) throw new ExitError(ExitCode.USAGE, `kv ${action}: missing ${what}`);
    return v;
  };
  if (!["get", "put", "list", "delete"].includes(action)) {
    throw new ExitError(ExitCode.USAGE, `kv: unknown action "${action}" (expected get, put, list or delete)`);
  }
  if (action === "put") need("VALUE", value);
  if (action !== "list") need("KEY", key);
  else if (key !== undefined) throw new ExitError(ExitCode.USAGE, "kv list takes no KEY (use --prefix)");
  const limit = intOption("limit", flags.limit, { min: 1, max: 100_000 }) ?? 1000;
  return withMesh(globals, { work: false }, async (mesh) => {
    const ns = mesh.kv(namespace);
    switch (action) {
      case "get": {
        const found = await ns.exists(key!);
        if (!found) throw new ExitError(ExitCode.NOT_FOUND, `kv: no key "${key}" in namespace "${namespace}"`);
        const v = await ns.get(key!);
        return { data: { namespace, key, value: v }, human: JSON.stringify(v, null, 2) };
      }
      case "put": {
        const parsed = jsonOrString("kv put VALUE", value!);
        await ns.put(key!, parsed);
        return { data: { namespace, key, value: parsed }, human: `${namespace}/${key} = ${brief(parsed)}` };
      }
      case "delete": {
        const existed = await ns.exists(key!);
        if (existed) await ns.delete(key!);
        return { data: { namespace, key, value: null, deleted: existed }, human: existed ? `deleted ${namespace}/${key}` : `no key ${namespace}/${key}` };
      }
      default: {
        const entries = (await mesh.store.kvList(namespace, { prefix: flags.prefix ?? "", limit }))
          .map((e) => ({ key: e.key, value: e.value, version: e.version, updatedAtMs: e.updatedAtMs, writer: e.writer }));
        return { data: { namespace, entries }, human: table(["KEY", "VALUE", "UPDATED", "WRITER"], entries.map((e) => [e.key, brief(e.value), time(e.updatedAtMs), e.writer])) };
      }
    }
  });
}
