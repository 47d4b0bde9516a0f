/**
 * NVIDIA GPUs through `nvidia-smi --query-gpu=power.draw --format=csv,noheader,nounits` (one line per GPU, watts,
 * or '[N/A]' / '[Not Supported]' where the board has no sensor). One query per sampling tick serves every GPU.
 * Runs asynchronously with a timeout: a hung driver must not stall the sampler.
 */
import { execFile } from 'node:child_process';
import type { PowerReading, PowerSource } from './types.ts';

const QUERY_ARGS = ['--query-gpu=power.draw', '--format=csv,noheader,nounits'];
const TIMEOUT_MS = 5000;

type Query = { ok: true; lines: string[] } | { ok: false; reason: string };

export function queryNvidiaSmi(command: string): Promise<Query> {
  return new Promise((resolve) => {
    execFile(command, QUERY_ARGS, { timeout: TIMEOUT_MS, maxBuffer: 64 * 1024, windowsHide: true }, (error, stdout, stderr) => {
      if (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return resolve({ ok: false, reason: `${command} not found` });
        if (code === 'EACCES') return resolve({ ok: false, reason: `${command} is not executable` });
        if ((error as { killed?: boolean }).killed) return resolve({ ok: false, reason: `${command} did not answer within ${TIMEOUT_MS} ms` });
        const detail = (String(stderr).trim() || String(stdout).trim() || error.message).split('\n')[0].slice(0, 200);
        return resolve({ ok: false, reason: `${command} failed: ${detail}` });
      }
      resolve({ ok: true, lines: String(stdout).split('\n').map((l) => l.trim()).filter((l) => l !== '') });
    });
  });
}

/** Shares one nvidia-smi run between the GPUs' sources within a tick. */
export class NvidiaSmi {
  private last: { monotonicMs: number; result: Promise<Query> } | undefined;
  constructor(readonly command: string) {}

  query(monotonicMs: number): Promise<Query> {
    if (this.last?.monotonicMs !== monotonicMs) this.last = { monotonicMs, result: queryNvidiaSmi(this.command) };
    return this.last.result;
  }
}

export class NvidiaGpuSource implements PowerSource {
  readonly kind = 'nvidia' as const;
  readonly id: string;
  constructor(private readonly smi: NvidiaSmi, private readonly index: number) {
    this.id = `nvidia:gpu${index}`;
  }

  async read(monotonicMs: number): Promise<PowerReading> {
    const result = await this.smi.query(monotonicMs);
    if (!result.ok) return { watts: null, reason: result.reason };
    const line = result.lines[this.index];
    if (line === undefined) return { watts: null, reason: `${this.smi.command} listed ${result.lines.length} GPUs, GPU ${this.index} is gone` };
    const watts = Number(line);
    if (line === '' || !Number.isFinite(watts) || watts < 0) return { watts: null, reason: `${this.smi.command} reports '${line.slice(0, 40)}' for GPU ${this.index}` };
    return { watts };
  }
}

export async function detectNvidia(command: string): Promise<{ sources: PowerSource[]; missing?: string }> {
  const result = await queryNvidiaSmi(command);
  if (!result.ok) return { sources: [], missing: `NVIDIA: ${result.reason}` };
  if (result.lines.length === 0) return { sources: [], missing: `NVIDIA: ${command} lists no GPUs` };
  const smi = new NvidiaSmi(command);
  // GPUs without a power sensor still get a source: their '[N/A]' is recorded as the reason, not hidden.
  return { sources: result.lines.map((_, index) => new NvidiaGpuSource(smi, index)) };
}
