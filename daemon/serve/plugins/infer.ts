/**
 * POST /v2/models/{name}[/versions/{v}]/infer. A request leases the model version from the registry (so a swap
 * drains it before freeing the session), is validated against that version's inputs, waits for a slot in the
 * model's bounded queue, and runs on the engine (off this thread). The lease and the slot are returned when the
 * engine is done, even when the client was already answered 504: the session is busy until then.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { RunResult } from '../../engine/types.ts';
import { EdgerunError, isEdgerunError } from '../../errors.ts';
import type { Lease, ShadowSample } from '../../swap/registry.ts';
import { HEADER_LENGTH_HEADER, parseInferRequest } from '../infer-request.ts';
import { encodeInferResponse } from '../infer-response.ts';
import type { ServeContext } from '../options.ts';

interface InferParams {
  model: string;
  version?: string;
}

/** What the onResponse hook reports to metrics and telemetry. */
interface InferRecord {
  model: string;
  version: string;
  engine?: string;
  queueMs?: number;
  computeMs?: number;
  batchSize: number;
  error?: string;
  /** A successful request's feeds and outputs, offered for a shadow run once the reply is sent. */
  shadow?: Pick<ShadowSample, 'feeds' | 'outputs'>;
}

function withDeadline<T>(work: Promise<T>, deadline: number, model: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new EdgerunError('EDGERUN_ERR_TIMEOUT', `inference on model '${model}' did not finish within the request timeout`, { model })),
      Math.max(0, deadline - performance.now()));
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export const inferPlugin: FastifyPluginAsync<ServeContext> = async (app, ctx) => {
  const records = new WeakMap<FastifyRequest, InferRecord>();

  // Bodies are JSON or a JSON header followed by binary tensor data, under any content type clients send.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.limits.bodyLimitBytes }, (_request, body, done) => done(null, body));

  async function infer(request: FastifyRequest<{ Params: InferParams }>, reply: FastifyReply) {
    const { model, version } = request.params;
    const arrived = performance.now() - reply.elapsedTime;
    const deadline = arrived + ctx.limits.requestTimeoutMs;
    const record: InferRecord = { model: '', version: '', batchSize: 0 };
    records.set(request, record);

    let lease: Lease;
    try {
      lease = ctx.registry.acquire(model, version);
    } catch (error) {
      // Only names the registry knows become metric labels: clients cannot grow the label set.
      const notFound = isEdgerunError(error, 'EDGERUN_ERR_MODEL_NOT_FOUND');
      if (!notFound) Object.assign(record, { model, version: version ?? '' });
      else if (error.context.version !== undefined) record.model = model;
      record.error = isEdgerunError(error) ? error.code : 'internal';
      throw error;
    }
    ctx.metrics.leaseTaken(model);
    Object.assign(record, { model, version: lease.version, engine: lease.engine });
    let slot: (() => void) | undefined;
    let run: Promise<RunResult> | undefined;
    let timedOut = false;
    try {
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const parsed = parseInferRequest(body, request.headers[HEADER_LENGTH_HEADER], lease.session.inputs, lease.session.outputs);
      record.batchSize = parsed.batchSize;
      const queued = performance.now();
      slot = await ctx.queueFor(model).enter(deadline);
      record.queueMs = performance.now() - queued;
      const computeStarted = performance.now();
      run = lease.session.run(parsed.feeds);
      const result = await withDeadline(run, deadline, model).catch((error: unknown) => {
        timedOut = isEdgerunError(error, 'EDGERUN_ERR_TIMEOUT');
        throw error;
      });
      record.computeMs = performance.now() - computeStarted;
      if (ctx.registry.offerShadow) record.shadow = { feeds: parsed.feeds, outputs: result.outputs };
      const encoded = encodeInferResponse({ name: model, version: lease.version }, parsed.id, parsed.outputs, result.outputs);
      if (encoded.binary) {
        return reply.header(HEADER_LENGTH_HEADER, String(encoded.binary.headerLength)).type('application/octet-stream').send(encoded.binary.body);
      }
      return encoded.json;
    } catch (error) {
      record.error = isEdgerunError(error) ? error.code : 'internal';
      throw error;
    } finally {
      const finish = (ok: boolean | undefined): void => {
        slot?.();
        lease.release(ok === undefined ? undefined : { ok, latencyMs: performance.now() - arrived });
        ctx.metrics.leaseReturned(model);
      };
      // A request that never reached the engine says nothing about the model version's health.
      if (run) run.then(() => finish(!timedOut), () => finish(false));
      else finish(undefined);
    }
  }

  app.post<{ Params: InferParams }>('/v2/models/:model/infer', infer);
  app.post<{ Params: InferParams }>('/v2/models/:model/versions/:version/infer', infer);

  app.addHook('onResponse', async (request, reply) => {
    const record = records.get(request);
    if (!record) return;
    const totalMs = reply.elapsedTime;
    // After the reply went out: a shadow run on the previous version never delays or fails this request.
    if (record.shadow && reply.statusCode < 400) {
      try {
        ctx.registry.offerShadow?.({ model: record.model, version: record.version, ...record.shadow });
      } catch (error) {
        request.log.warn({ err: error, model: record.model }, 'offering a shadow run failed');
      }
      record.shadow = undefined;
    }
    ctx.metrics.observe({ model: record.model, version: record.version, status: reply.statusCode, totalMs, queueMs: record.queueMs, computeMs: record.computeMs });
    if (ctx.telemetry && record.engine) {
      const ok = reply.statusCode < 400;
      ctx.telemetry.recordRequest({
        at: Date.now() - totalMs,
        model: record.model,
        version: record.version,
        engine: record.engine,
        queueMs: record.queueMs ?? 0,
        computeMs: record.computeMs ?? 0,
        totalMs,
        batchSize: record.batchSize,
        ok,
        ...(ok ? {} : { error: record.error ?? `http_${Math.floor(reply.statusCode / 100)}xx` }),
      });
    }
  });
};
