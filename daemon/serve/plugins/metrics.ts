/** GET /metrics: Prometheus text exposition of the registry the serving metrics live in. */
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { ServeContext } from '../options.ts';

export const metricsPlugin: FastifyPluginAsync<ServeContext & { metricsRegistry: Registry }> = async (app, ctx) => {
  app.get('/metrics', async (_request, reply) => {
    const text = await ctx.metricsRegistry.metrics();
    return reply.type(ctx.metricsRegistry.contentType).send(text);
  });
};
