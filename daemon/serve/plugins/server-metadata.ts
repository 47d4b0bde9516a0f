/** GET /v2: the server metadata of the protocol (name, version, the extensions implemented). */
import type { FastifyPluginAsync } from 'fastify';
import type { ServeContext } from '../options.ts';

export const SERVER_EXTENSIONS = ['binary_tensor_data', 'model_repository'] as const;

export const serverMetadataPlugin: FastifyPluginAsync<ServeContext> = async (app, ctx) => {
  app.get('/v2', async () => ({ name: ctx.serverInfo.name, version: ctx.serverInfo.version, extensions: [...SERVER_EXTENSIONS] }));
};
