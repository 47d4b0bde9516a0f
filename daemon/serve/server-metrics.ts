/**
 * Prometheus metrics of the serving layer (prom-client): inference requests by model, version and status;
 * queue, compute and total latency histograms; requests in flight; queue depth; and the event-loop delay,
 * which shows whether anything blocks the serving thread (inference must not: it runs on engine threads).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { EdgerunError } from '../errors.ts';
import type { InferenceQueue } from './inference-queue.ts';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Sampling period of the event-loop delay monitor; delays shorter than this are not resolved. */
const EVENT_LOOP_RESOLUTION_MS = 10;

export const METRIC_NAMES = {
  requests: 'edgerun_inference_requests_total',
  queueSeconds: 'edgerun_inference_queue_seconds',
  computeSeconds: 'edgerun_inference_compute_seconds',
  totalSeconds: 'edgerun_inference_request_seconds',
  inFlight: 'edgerun_inference_in_flight',
  queueDepth: 'edgerun_inference_queue_depth',
  eventLoopDelay: 'edgerun_event_loop_delay_seconds',
} as const;

export interface InferenceObservation {
  model: string;
  version: string;
  status: number;
  queueMs?: number;
  computeMs?: number;
  totalMs: number;
}

export class ServerMetrics {
  private readonly requests: Counter<'model' | 'version' | 'status'>;
  private readonly queueSeconds: Histogram<'model' | 'version'>;
  private readonly computeSeconds: Histogram<'model' | 'version'>;
  private readonly totalSeconds: Histogram<'model' | 'version'>;
  private readonly inFlight: Gauge<'model'>;
  private readonly loopDelay: IntervalHistogram;

  constructor(private readonly registry: Registry, queues: () => Iterable<InferenceQueue>) {
    // One serving app owns these names in a registry (its gauges read that app's queues): a second one is refused.
    const taken = Object.values(METRIC_NAMES).find((name) => registry.getSingleMetric(name) !== undefined);
    if (taken) {
      throw new EdgerunError('EDGERUN_ERR_CONFIG', `metricsRegistry already holds ${taken}: another serving app uses it (close that one first)`, { key: 'metricsRegistry' });
    }
    const registers = [registry];
    this.requests = new Counter({
      name: METRIC_NAMES.requests, help: 'Inference requests by model, version and HTTP status', labelNames: ['model', 'version', 'status'], registers,
    });
    const histogram = (name: string, help: string): Histogram<'model' | 'version'> =>
      new Histogram({ name, help, labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers });
    this.queueSeconds = histogram(METRIC_NAMES.queueSeconds, 'Time inference requests waited in their model queue');
    this.computeSeconds = histogram(METRIC_NAMES.computeSeconds, 'Time inference requests spent in the engine');
    this.totalSeconds = histogram(METRIC_NAMES.totalSeconds, 'Inference request time from arrival to response');
    this.inFlight = new Gauge({ name: METRIC_NAMES.inFlight, help: 'Inference requests holding a model lease', labelNames: ['model'], registers });
    new Gauge({
      name: METRIC_NAMES.queueDepth, help: 'Inference requests waiting in a model queue', labelNames: ['model'], registers,
      collect() {
        for (const queue of queues()) this.set({ model: queue.model }, queue.depth);
      },
    });
    this.loopDelay = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
    this.loopDelay.enable();
    const loopDelay = this.loopDelay;
    new Gauge({
      name: METRIC_NAMES.eventLoopDelay,
      help: `Event-loop delay of the serving thread since the previous scrape (sampled every ${EVENT_LOOP_RESOLUTION_MS} ms)`,
      labelNames: ['quantile'], registers,
      collect() {
        if (loopDelay.count === 0) return;
        for (const [label, value] of [['0.5', loopDelay.percentile(50)], ['0.9', loopDelay.percentile(90)], ['0.99', loopDelay.percentile(99)], ['1', loopDelay.max]] as const) {
          this.set({ quantile: label }, value / 1e9);
        }
        loopDelay.reset();
      },
    });
  }

  leaseTaken(model: string): void {
    this.inFlight.inc({ model });
  }

  leaseReturned(model: string): void {
    this.inFlight.dec({ model });
  }

  observe(observation: InferenceObservation): void {
    const labels = { model: observation.model, version: observation.version };
    this.requests.inc({ ...labels, status: String(observation.status) });
    this.totalSeconds.observe(labels, observation.totalMs / 1000);
    if (observation.queueMs !== undefined) this.queueSeconds.observe(labels, observation.queueMs / 1000);
    if (observation.computeMs !== undefined) this.computeSeconds.observe(labels, observation.computeMs / 1000);
  }

  /** Stops the event-loop monitor and removes this app's metrics from the registry (a new app may then use it). */
  close(): void {
    this.loopDelay.disable();
    for (const name of Object.values(METRIC_NAMES)) this.registry.removeSingleMetric(name);
  }
}
