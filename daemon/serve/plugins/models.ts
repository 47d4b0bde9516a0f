/** Model metadata and readiness: GET /v2/models/{name}[/versions/{v}] and …/ready. */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { findModel, modelMetadata, notReadyReason } from '../model-metadata.ts';
import type { ServeContext } from '../options.ts';

interface ModelParams {
  model: string;
  version?: string;
}

export const modelsPlugin: FastifyPluginAsync<ServeContext> = async (app, ctx) => {
  const metadata = async (request: { params: ModelParams }) =>
    modelMetadata(findModel(ctx.registry, request.params.model), request.params.version);
  app.get<{ Params: ModelParams }>('/v2/models/:model', metadata);
  app.get<{ Params: ModelParams }>('/v2/models/:model/versions/:version', metadata);

  const ready = async (request: { params: ModelParams }, reply: FastifyReply) => {
    const reason = notReadyReason(findModel(ctx.registry, request.params.model), request.params.version);
    if (reason === null) return reply.code(200).send();
    return reply.code(400).send({ error: reason, code: 'EDGERUN_ERR_MODEL_NOT_READY' });
  };
  app.get<{ Params: ModelParams }>('/v2/models/:model/ready', ready);
  app.get<{ Params: ModelParams }>('/v2/models/:model/versions/:version/ready', ready);
};
