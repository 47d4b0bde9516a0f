/**
 * The telemetry uplink: every interval it appends a TelemetryReport (what the telemetry database gained since the
 * previous one) to the bounded backlog, and publishes the backlog in seq order with QoS 1 on
 * topics.telemetry(prefix, deviceId). A report leaves the backlog only when the broker acknowledged it (PUBACK).
 *
 * Offline, reports keep going into the backlog (oldest dropped beyond its bound, counted in every later report).
 * Reconnecting is mqtt.js's job: we publish only while it is connected, and on 'connect' we resume after the last
 * report handed to it. A publish interrupted by a lost connection stays in mqtt.js's outgoing store, which sends
 * it again first thing after reconnecting, before anything newer, so the replay is in order. After a daemon
 * restart the unacknowledged reports are published again (the monitor drops duplicates by (device, seq)).
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from '../log.ts';
import type { TelemetryDb } from '../telemetry/schema.ts';
import { topics } from './protocol.ts';
import type { TelemetryBacklog } from './telemetry-backlog.ts';
import { buildReport, cursorAtEnd, parseCursor, readWindow, type ReportCursor } from './uplink-report.ts';

export interface UplinkOptions {
  client: MqttClient;
  prefix: string;
  deviceId: string;
  backlog: TelemetryBacklog;
  /** The daemon's telemetry database (read only here). */
  telemetry: TelemetryDb;
  intervalMs: number;
  /** Reports handed to mqtt.js and not yet acknowledged, at most (default 16). */
  maxInFlight?: number;
  log: Logger;
  now?: () => number;
}

export interface UplinkStats {
  /** Reports appended to the backlog by this process. */
  built: number;
  /** Reports the broker acknowledged (and that left the backlog). */
  acknowledged: number;
  inFlight: number;
  backlogRows: number;
  droppedTotal: number;
  /** A publish the broker refused or that failed, with the reason (retried from the oldest at the next tick). */
  lastError: string | null;
}

export class TelemetryUplink {
  readonly #o: Required<Omit<UplinkOptions, 'now'>> & { now: () => number };
  readonly #topic: string;
  readonly #inFlight = new Set<number>();
  #lastHanded = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** After stop(): the backlog may be closed, late acknowledgements are ignored. */
  #detached = false;
  #built = 0;
  #acknowledged = 0;
  #lastError: string | null = null;
  /** Set when a publish failed: its report is still in the backlog, behind #lastHanded. */
  #rewind = false;
  #settledWaiters: (() => void)[] = [];
  /** Where the very first report starts (when the backlog has no cursor yet): the database's end at construction. */
  readonly #initialCursor: ReportCursor;
  readonly #onConnect = () => this.#pump();

  constructor(options: UplinkOptions) {
    this.#o = { maxInFlight: 16, now: Date.now, ...options };
    this.#topic = topics.telemetry(options.prefix, options.deviceId);
    this.#initialCursor = cursorAtEnd(options.telemetry, this.#o.now());
  }

  start(): void {
    this.#o.client.on('connect', this.#onConnect);
    this.#timer = setInterval(() => this.tick(), this.#o.intervalMs);
    this.#timer.unref();
    this.#pump();
  }

  /** Appends one report for the window since the previous one and publishes what the backlog holds. */
  tick(): void {
    if (this.#stopped) return;
    try {
      this.appendReport();
    } catch (error) {
      this.#o.log.error({ err: error }, 'telemetry uplink: could not build a report');
    }
    // A publish that failed left its report in the backlog: start over from the oldest one not in flight.
    if (this.#rewind && this.#inFlight.size === 0) {
      this.#lastHanded = 0;
      this.#rewind = false;
    }
    this.#pump();
  }

  appendReport(): number {
    const now = this.#o.now();
    const entry = this.#o.backlog.append((seq, droppedTotal) => {
      const cursor = parseCursor(this.#o.backlog.cursor()) ?? this.#initialCursor;
      const window = readWindow(this.#o.telemetry, cursor, now);
      return { payload: JSON.stringify(buildReport(this.#o.deviceId, seq, droppedTotal, cursor, window)), cursor: JSON.stringify(window.next) };
    });
    this.#built++;
    return entry.seq;
  }

  stats(): UplinkStats {
    const backlog = this.#o.backlog.stats();
    return {
      built: this.#built, acknowledged: this.#acknowledged, inFlight: this.#inFlight.size,
      backlogRows: backlog.rows, droppedTotal: backlog.droppedTotal, lastError: this.#lastError,
    };
  }

  /**
   * Stops building and publishing, and waits (at most `graceMs`) for the acknowledgements of reports in flight so
   * they are not sent again after a restart. What is not acknowledged stays in the backlog for the next start.
   */
  async stop(graceMs = 2000): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#o.client.removeListener('connect', this.#onConnect);
    if (this.#inFlight.size > 0 && this.#o.client.connected) await this.#settledOrTimeout(graceMs);
    this.#detached = true;
  }

  async #settledOrTimeout(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#settledWaiters.push(resolve)),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); }),
    ]);
    clearTimeout(timer);
    this.#settledWaiters = [];
  }

  #pump(): void {
    const { client, backlog, maxInFlight } = this.#o;
    if (this.#stopped || !client.connected) return;
    const room = maxInFlight - this.#inFlight.size;
    if (room <= 0) return;
    for (const entry of backlog.peek(room, this.#lastHanded)) {
      this.#lastHanded = entry.seq;
      this.#inFlight.add(entry.seq);
      client.publish(this.#topic, entry.payload, { qos: 1 }, (error) => this.#settled(entry.seq, error));
    }
  }

  #settled(seq: number, error: Error | undefined): void {
    if (this.#detached || !this.#inFlight.delete(seq)) return;
    if (error) {
      this.#lastError = `seq ${seq}: ${error.message}`;
      this.#rewind = true;
      this.#o.log.warn({ seq, err: error }, 'telemetry uplink: publish failed; retried from the oldest report at the next tick');
    } else {
      this.#o.backlog.remove(seq);
      this.#acknowledged++;
      this.#lastError = null;
    }
    if (this.#inFlight.size === 0) for (const resolve of this.#settledWaiters.splice(0)) resolve();
    this.#pump();
  }
}
