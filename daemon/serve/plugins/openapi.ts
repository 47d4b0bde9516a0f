/** GET /v2/openapi.json: the OpenAPI document of everything this app serves. */
import type { FastifyPluginAsync } from 'fastify';
import { openApiDocument } from '../openapi.ts';
import type { ServeContext } from '../options.ts';

export const openApiPlugin: FastifyPluginAsync<ServeContext> = async (app, ctx) => {
  const document = JSON.stringify(openApiDocument(ctx.serverInfo));
  app.get('/v2/openapi.json', async (_request, reply) => reply.type('application/json').send(document));
};
