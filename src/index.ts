export { RelayMesh, type EngineState } from "./engine.js";
export { type EngineOptions, type CloseOptions, EngineOptionsSchema } from "./options.js";
export { type EngineEventMap, type EngineEventName } from "./events.js";
export {
  RelayMeshError, ErrorCode, InvalidInputError, InvalidOptionsError, NotFoundError, StoreError, LeaseLostError,
  StepTimeoutError, InvalidStateError, ShutdownTimeoutError, NonRetryableError, RetryLaterError, isRelayMeshError,
  type Problem, type WireError,
} from "./errors.js";
export type { AgentContext, AgentFunction } from "./agents/context.js";
export { KvNamespace } from "./agents/kv.js";
export { type ModuleAgentConfig } from "./agents/registry.js";
export { WorkflowSpecSchema, type WorkflowSpec, type StepSpec, type SingleTaskSpec, type Priority } from "./model/workflow.js";
export { SettingsSchema, type Settings, type SettingsInput } from "./model/settings.js";
export type {
  TaskStatus, StepStatus, TaskRecord, TaskWithSteps, StepRecord, LeaseConflict, KvChange, KvEntry, NodeRecord, HealthCheck,
} from "./store/types.js";
export type { SubmitOptions } from "./model/build-task.js";
export { ScheduleInputSchema, type ScheduleInput } from "./schedule/definition.js";
export type { ConcurrencySpec, DedupeSpec, RateLimitRef, RateLimitSetting } from "./model/flow.js";
export { AGENT_WORKER_FILE } from "./pool/pool.js";
