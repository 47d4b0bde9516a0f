/**
 * The HTTP app: build(opts) creates a fastify instance speaking the Open Inference Protocol (KServe v2) with one
 * plugin per concern. It does not listen: the daemon calls listen(), tests use inject().
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { EdgerunError } from '../errors.ts';
import { logger as rootLogger } from '../log.ts';
import { errorHandler } from './http-errors.ts';
import { InferenceQueue } from './inference-queue.ts';
import { resolveLimits, type ServeContext, type ServeOptions } from './options.ts';
import { healthPlugin } from './plugins/health.ts';
import { inferPlugin } from './plugins/infer.ts';
import { metricsPlugin } from './plugins/metrics.ts';
import { modelsPlugin } from './plugins/models.ts';
import { openApiPlugin } from './plugins/openapi.ts';
import { repositoryPlugin } from './plugins/repository.ts';
import { serverMetadataPlugin } from './plugins/server-metadata.ts';
import { edgerunServerInfo } from './server-info.ts';
import { ServerMetrics } from './server-metrics.ts';

export type { ServeLimits, ServeOptions } from './options.ts';
export { DEFAULT_LIMITS } from './options.ts';

export async function build(opts: ServeOptions): Promise<FastifyInstance> {
  const limits = resolveLimits(opts.limits);
  const isDraining = opts.isDraining ?? (() => false);
  const metricsRegistry = opts.metricsRegistry ?? new Registry();
  if (!opts.metricsRegistry) collectDefaultMetrics({ register: metricsRegistry });

  const queues = new Map<string, InferenceQueue>();
  const metrics = new ServerMetrics(metricsRegistry, () => queues.values());
  const ctx: ServeContext = {
    registry: opts.registry,
    limits,
    metrics,
    isDraining,
    serverInfo: opts.serverInfo ?? edgerunServerInfo(),
    queueFor(model) {
      let queue = queues.get(model);
      if (!queue) {
        queue = new InferenceQueue(model, limits);
        queues.set(model, queue);
      }
      return queue;
    },
    ...(opts.telemetry ? { telemetry: opts.telemetry } : {}),
  };

  const app = Fastify({
    loggerInstance: (opts.logger ?? rootLogger.child({ component: 'http' })) as FastifyBaseLogger,
    // Per-request log lines cost more than a small model's inference; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.bodyLimitBytes,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.addHook('onClose', async () => metrics.close());
  app.setErrorHandler(errorHandler(limits.bodyLimitBytes));
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `no endpoint ${request.method} ${request.url}`, code: 'EDGERUN_ERR_REQUEST' });
  });
  app.addHook('onRequest', (request, _reply, done) => {
    if (!isDraining()) return done();
    done(new EdgerunError('EDGERUN_ERR_DRAINING', `the server is shutting down and takes no new requests (${request.method} ${request.url})`));
  });

  await app.register(healthPlugin, ctx);
  await app.register(serverMetadataPlugin, ctx);
  await app.register(modelsPlugin, ctx);
  await app.register(inferPlugin, ctx);
  await app.register(repositoryPlugin, ctx);
  await app.register(metricsPlugin, { ...ctx, metricsRegistry });
  await app.register(openApiPlugin, ctx);
  return app;
}
