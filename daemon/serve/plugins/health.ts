/**
 * GET /v2/health/live and /v2/health/ready: the protocol answers with the status code alone (200 true,
 * 4xx false). Ready means at least one model has a READY active version; while draining the onRequest hook
 * answers 503 before these run.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ServeContext } from '../options.ts';

export const healthPlugin: FastifyPluginAsync<ServeContext> = async (app, ctx) => {
  app.get('/v2/health/live', async (_request, reply) => reply.code(200).send());

  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = ctx.registry.list().some((model) =>
      model.versions.some((v) => v.version === model.activeVersion && v.state === 'READY'));
    if (ready) return reply.code(200).send();
    return reply.code(400).send({ error: 'no model is ready to serve', code: 'EDGERUN_ERR_MODEL_NOT_READY' });
  });
};
