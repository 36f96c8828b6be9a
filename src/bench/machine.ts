import { readFileSync } from "node:fs";
import { arch, availableParallelism, cpus, hostname, loadavg, platform, release, totalmem } from "node:os";

/** What a report says about the machine it ran on. */
export interface MachineFacts {
  hostname: string;
  platform: string;
  release: string;
  arch: string;
  cpuModel: string;
  cores: number;
  totalMemoryMb: number;
  node: string;
  /** 1, 5 and 15 minute load averages when the run started (other work on the machine shows here). */
  loadAverageAtStart: number[];
}

export function machineFacts(): MachineFacts {
  return {
    hostname: hostname(), platform: platform(), release: release(), arch: arch(), cpuModel: cpus()[0]?.model ?? "unknown",
    cores: availableParallelism(), totalMemoryMb: Math.round(totalmem() / 2 ** 20), node: process.version, loadAverageAtStart: loadavg(),
  };
}

/** The version of this RelayMesh package. */
export function relaymeshVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}
