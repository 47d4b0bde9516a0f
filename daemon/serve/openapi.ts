/**
 * The OpenAPI 3.1 document of the HTTP API (served at GET /v2/openapi.json). Schemas follow the Open Inference
 * Protocol's REST definitions (KServe rest_predict_v2) and Triton's model repository and binary data extensions.
 * A test checks that every route the app registers is documented here and the reverse.
 */
import { DATATYPES } from './datatypes.ts';

const json = (schema: object) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });
const emptyOk = (description: string) => ({ description });

const modelName = { name: 'model_name', in: 'path', required: true, schema: { type: 'string' } };
const modelVersion = { name: 'model_version', in: 'path', required: true, schema: { type: 'string' } };

const binaryBody = {
  'application/octet-stream': {
    schema: { type: 'string', format: 'binary' },
    description: 'The JSON inference header (its byte length in Inference-Header-Content-Length) followed by the binary data of every input that has parameters.binary_data_size, in input order.',
  },
};

function inferOperation(versioned: boolean) {
  return {
    post: {
      summary: versioned ? 'Run inference on a model version' : 'Run inference on the active version of a model',
      operationId: versioned ? 'inferVersion' : 'infer',
      parameters: [
        modelName, ...(versioned ? [modelVersion] : []),
        { name: 'Inference-Header-Content-Length', in: 'header', required: false, schema: { type: 'integer', minimum: 0 }, description: 'Binary tensor data extension: length of the JSON header at the start of the body.' },
      ],
      requestBody: { required: true, content: { ...json(ref('InferenceRequest')), ...binaryBody } },
      responses: {
        200: {
          description: 'Inference results. With binary outputs the body is the JSON header followed by their data, and the Inference-Header-Content-Length header gives the header length.',
          headers: { 'Inference-Header-Content-Length': { schema: { type: 'integer' }, description: 'Present when some output is returned as binary data.' } },
          content: { ...json(ref('InferenceResponse')), 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        400: errorResponse('Invalid request: the message names the field (name, datatype, shape, data, binary sizes)'),
        404: errorResponse('Unknown model or version'),
        413: errorResponse('The body exceeds the body limit'),
        503: { ...errorResponse('Model not ready, queue full (with Retry-After) or server draining (with Connection: close)'), headers: { 'Retry-After': { schema: { type: 'integer' } } } },
        504: errorResponse('The request did not complete within the request timeout'),
      },
    },
  };
}

function metadataOperation(versioned: boolean) {
  return {
    get: {
      summary: versioned ? 'Metadata of a model version' : 'Metadata of a model (its active version)',
      operationId: versioned ? 'modelVersionMetadata' : 'modelMetadata',
      parameters: versioned ? [modelName, modelVersion] : [modelName],
      responses: { 200: { description: 'Model metadata', content: json(ref('ModelMetadata')) }, 404: errorResponse('Unknown model or version') },
    },
  };
}

function readyOperation(versioned: boolean) {
  return {
    get: {
      summary: versioned ? 'Whether a model version is ready' : 'Whether a model is ready',
      operationId: versioned ? 'modelVersionReady' : 'modelReady',
      parameters: versioned ? [modelName, modelVersion] : [modelName],
      responses: { 200: emptyOk('Ready'), 400: errorResponse('Not ready (the message says why)'), 404: errorResponse('Unknown model or version') },
    },
  };
}

const tensorData = {
  description: 'Tensor elements in row-major order, flat or nested (numbers; true/false for BOOL).',
  type: 'array',
  items: { anyOf: [{ type: 'number' }, { type: 'boolean' }, { type: 'array' }] },
};
const parameters = { type: 'object', additionalProperties: true };

export function openApiDocument(serverInfo: { name: string; version: string }): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'edgerun inference API',
      version: serverInfo.version,
      description: 'The Open Inference Protocol (KServe v2) with the binary tensor data and model repository extensions, plus Prometheus metrics.',
    },
    paths: {
      '/v2/health/live': { get: { summary: 'Liveness', operationId: 'serverLive', responses: { 200: emptyOk('The server is live'), 503: errorResponse('Draining') } } },
      '/v2/health/ready': { get: { summary: 'Readiness: at least one model is ready', operationId: 'serverReady', responses: { 200: emptyOk('Ready'), 400: errorResponse('No model is ready'), 503: errorResponse('Draining') } } },
      '/v2': { get: { summary: 'Server metadata', operationId: 'serverMetadata', responses: { 200: { description: 'Server metadata', content: json(ref('ServerMetadata')) } } } },
      '/v2/models/{model_name}': metadataOperation(false),
      '/v2/models/{model_name}/versions/{model_version}': metadataOperation(true),
      '/v2/models/{model_name}/ready': readyOperation(false),
      '/v2/models/{model_name}/versions/{model_version}/ready': readyOperation(true),
      '/v2/models/{model_name}/infer': inferOperation(false),
      '/v2/models/{model_name}/versions/{model_version}/infer': inferOperation(true),
      '/v2/repository/index': {
        post: {
          summary: 'List the models and versions the server knows', operationId: 'repositoryIndex',
          requestBody: { required: false, content: json(ref('RepositoryIndexRequest')) },
          responses: { 200: { description: 'One entry per model version', content: json({ type: 'array', items: ref('RepositoryIndexEntry') }) }, 400: errorResponse('Invalid body') },
        },
      },
      '/v2/repository/models/{model_name}/load': {
        post: {
          summary: 'Load (or reload) a model from the models folder or store; returns when it serves or failed', operationId: 'repositoryLoad',
          parameters: [modelName],
          requestBody: { required: false, content: json({ type: 'object', properties: { parameters } }) },
          responses: { 200: emptyOk('Loaded and ready'), 400: errorResponse('Invalid body or unsupported parameters'), 404: errorResponse('No such model'), 503: errorResponse('The load failed') },
        },
      },
      '/v2/repository/models/{model_name}/unload': {
        post: {
          summary: 'Stop serving a model (in-flight requests finish first)', operationId: 'repositoryUnload',
          parameters: [modelName],
          requestBody: { required: false, content: json({ type: 'object', properties: { parameters } }) },
          responses: { 200: emptyOk('Unloaded'), 404: errorResponse('No such model') },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics', operationId: 'metrics',
          responses: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      '/v2/openapi.json': {
        get: { summary: 'This document', operationId: 'openapi', responses: { 200: { description: 'OpenAPI 3.1 document', content: json({ type: 'object' }) } } },
      },
    },
    components: {
      schemas: {
        Error: { type: 'object', required: ['error'], properties: { error: { type: 'string' }, code: { type: 'string', description: 'edgerun error code (docs/ERRORS.md)' } } },
        ServerMetadata: {
          type: 'object', required: ['name', 'version', 'extensions'],
          properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } },
        },
        MetadataTensor: {
          type: 'object', required: ['name', 'datatype', 'shape'],
          properties: { name: { type: 'string' }, datatype: { type: 'string', enum: [...DATATYPES] }, shape: { type: 'array', items: { type: 'integer', minimum: -1 }, description: '-1 marks a dynamic dim' } },
        },
        ModelMetadata: {
          type: 'object', required: ['name', 'platform', 'inputs', 'outputs'],
          properties: {
            name: { type: 'string' }, versions: { type: 'array', items: { type: 'string' } }, platform: { type: 'string' },
            inputs: { type: 'array', items: ref('MetadataTensor') }, outputs: { type: 'array', items: ref('MetadataTensor') },
          },
        },
        RequestInput: {
          type: 'object', required: ['name', 'shape', 'datatype'],
          properties: {
            name: { type: 'string' },
            shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
            datatype: { type: 'string', enum: [...DATATYPES] },
            parameters: { type: 'object', properties: { binary_data_size: { type: 'integer', minimum: 0 } }, additionalProperties: true },
            data: tensorData,
          },
        },
        RequestOutput: {
          type: 'object', required: ['name'],
          properties: { name: { type: 'string' }, parameters: { type: 'object', properties: { binary_data: { type: 'boolean' } }, additionalProperties: true } },
        },
        InferenceRequest: {
          type: 'object', required: ['inputs'],
          properties: {
            id: { type: 'string' },
            parameters: { type: 'object', properties: { binary_data_output: { type: 'boolean' } }, additionalProperties: true },
            inputs: { type: 'array', minItems: 1, items: ref('RequestInput') },
            outputs: { type: 'array', items: ref('RequestOutput') },
          },
        },
        ResponseOutput: {
          type: 'object', required: ['name', 'shape', 'datatype'],
          properties: {
            name: { type: 'string' },
            shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
            datatype: { type: 'string', enum: [...DATATYPES] },
            parameters: { type: 'object', properties: { binary_data_size: { type: 'integer', minimum: 0 } } },
            data: {
              description: 'Flat, row-major. Non-finite floats are null (JSON has no NaN): ask for binary_data to get them exactly.',
              type: 'array', items: { anyOf: [{ type: 'number' }, { type: 'boolean' }, { type: 'null' }] },
            },
          },
        },
        InferenceResponse: {
          type: 'object', required: ['model_name', 'outputs'],
          properties: {
            model_name: { type: 'string' }, model_version: { type: 'string' }, id: { type: 'string' },
            outputs: { type: 'array', items: ref('ResponseOutput') },
          },
        },
        RepositoryIndexRequest: { type: 'object', properties: { ready: { type: 'boolean' } } },
        RepositoryIndexEntry: {
          type: 'object', required: ['name', 'state'],
          properties: { name: { type: 'string' }, version: { type: 'string' }, state: { type: 'string' }, reason: { type: 'string' } },
        },
      },
    },
  };
}
