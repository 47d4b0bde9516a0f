/**
 * The daemon configuration as the code sees it: config/schema.json describes the same shape for files, and
 * config/default.json fills every key. `ResolvedConfig` is what loadConfig returns: directories made absolute
 * and the null "choose for me" values replaced.
 */
export type EngineKind = 'auto' | 'webgpu' | 'onnxruntime-cpu';
export type PowerSourceName = 'rapl' | 'hwmon' | 'nvidia' | 'ina3221' | 'battery';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface DaemonConfig {
  server: { host: string; port: number; requestTimeoutMs: number; keepAliveTimeoutMs: number };
  limits: { bodyBytes: number; maxQueueDepth: number; maxConcurrentInferences: number; retryAfterSeconds: number };
  state: { dir: string | null };
  models: { dir: string | null };
  engine: { kind: EngineKind; adapterIndex: number | null; cpuThreads: number | null };
  swap: {
    keepVersions: number;
    warmupRuns: number;
    gate: { enabled: boolean };
    probation: { windowMs: number; minRequests: number; maxErrorRate: number; maxLatencyRatio: number };
  };
  telemetry: {
    enabled: boolean;
    dbFile: string | null;
    flushIntervalMs: number;
    batchSize: number;
    maxQueue: number;
    shadowFraction: number;
    retention: {
      rawMaxAgeHours: number;
      minuteMaxAgeDays: number;
      hourMaxAgeDays: number;
      eventsMaxAgeDays: number;
      maxBytes: number;
      intervalMs: number;
    };
  };
  power: { sources: PowerSourceName[]; sysfsRoot: string; intervalMs: number; nvidiaSmi: string };
  lifecycle: { shutdownGraceMs: number; componentStopTimeoutMs: number; watchdog: boolean };
  fleet: {
    broker: string | null;
    deviceId: string | null;
    groups: string[];
    /** PEM files or PEM text. */
    trust: string[];
    target: string | null;
    topicPrefix: string;
    mqttProtocolVersion: 4 | 5;
    maxPackageBytes: number;
    minFreeDiskBytes: number;
    chunkRequestTimeoutMs: number;
    telemetryIntervalMs: number;
    telemetryBacklogMaxRows: number;
    telemetryBacklogMaxBytes: number;
  };
  log: { level: LogLevel };
}

export interface ResolvedConfig extends DaemonConfig {
  state: { dir: string };
  models: { dir: string };
  telemetry: DaemonConfig['telemetry'] & { dbFile: string };
  /** deviceId: the host name when not set; trust: file paths made absolute (PEM text kept as is). */
  fleet: DaemonConfig['fleet'] & { deviceId: string };
}

/** Where a value came from, for error messages and the startup log. */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

/** The daemon's command-line flags, as typed (strings) or already parsed. */
export interface ConfigFlags {
  port?: string | number;
  stateDir?: string;
  modelsDir?: string;
  broker?: string;
  deviceId?: string;
  /** --trust, repeatable. */
  trust?: string[];
  /** --group, repeatable. */
  groups?: string[];
}
