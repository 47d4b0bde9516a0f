/**
 * Triton's model repository extension: POST /v2/repository/index, …/models/{name}/load and …/unload.
 * Bodies are optional JSON objects; overriding a model's configuration or files through the request is not
 * supported (models come from the models folder and the store).
 */
import type { FastifyPluginAsync } from 'fastify';
import { EdgerunError } from '../../errors.ts';
import { repositoryIndex } from '../model-metadata.ts';
import type { ServeContext } from '../options.ts';

function optionalObject(body: unknown, route: string): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  const text = Buffer.isBuffer(body) ? body.toString('utf8').trim() : '';
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_REQUEST', `body of ${route}: not valid JSON: ${(error as Error).message}`, { field: 'body' });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new EdgerunError('EDGERUN_ERR_REQUEST', `body of ${route}: must be a JSON object`, { field: 'body' });
  }
  return parsed as Record<string, unknown>;
}

export const repositoryPlugin: FastifyPluginAsync<ServeContext> = async (app, ctx) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.post('/v2/repository/index', async (request) => {
    const body = optionalObject(request.body, 'repository index');
    if (body.ready !== undefined && typeof body.ready !== 'boolean') {
      throw new EdgerunError('EDGERUN_ERR_REQUEST', 'ready: must be true or false', { field: 'ready' });
    }
    return repositoryIndex(ctx.registry.list(), body.ready === true);
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/load', async (request, reply) => {
    const { model } = request.params;
    const body = optionalObject(request.body, 'repository load');
    const parameters = body.parameters;
    if (parameters !== undefined) {
      if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
        throw new EdgerunError('EDGERUN_ERR_REQUEST', 'parameters: must be an object', { field: 'parameters' });
      }
      const override = Object.keys(parameters).find((key) => key === 'config' || key.startsWith('file:'));
      if (override) throw new EdgerunError('EDGERUN_ERR_REQUEST', `parameters.${override}: loading a model from a request-supplied configuration or file is not supported`, { field: `parameters.${override}` });
    }
    const info = await ctx.registry.load(model);
    const active = info.versions.find((v) => v.version === info.activeVersion);
    if (active?.state !== 'READY') {
      const latest = info.versions.at(-1);
      throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_READY', `failed to load model '${model}'${latest?.reason ? `: ${latest.reason}` : ''}`, { model });
    }
    return reply.code(200).send();
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (request, reply) => {
    const body = optionalObject(request.body, 'repository unload');
    if (body.parameters !== undefined && (typeof body.parameters !== 'object' || body.parameters === null || Array.isArray(body.parameters))) {
      throw new EdgerunError('EDGERUN_ERR_REQUEST', 'parameters: must be an object', { field: 'parameters' });
    }
    await ctx.registry.unload(request.params.model);
    return reply.code(200).send();
  });
};
