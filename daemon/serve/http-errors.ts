/**
 * Every error reply has the protocol's error body, `{ "error": "<message>" }`, plus the edgerun code.
 * EdgerunErrors keep their registered status; fastify's own errors (body too large, bad media type) keep theirs.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isEdgerunError, type ErrorCode } from '../errors.ts';

export interface ErrorBody {
  error: string;
  code?: ErrorCode;
}

export interface HttpError {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
}

export function toHttpError(error: unknown, bodyLimitBytes: number): HttpError {
  if (isEdgerunError(error)) {
    const headers: Record<string, string> = {};
    if (error.code === 'EDGERUN_ERR_OVERLOADED') headers['retry-after'] = String(error.context.retryAfterSeconds ?? 1);
    if (error.code === 'EDGERUN_ERR_DRAINING') headers.connection = 'close';
    return { status: error.status, body: { error: error.message, code: error.code }, headers };
  }
  const fastifyError = error as Partial<FastifyError>;
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message = fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
      ? `the request body exceeds the limit of ${bodyLimitBytes} bytes`
      : fastifyError.message ?? 'bad request';
    return { status, body: { error: message, code: 'EDGERUN_ERR_REQUEST' }, headers: {} };
  }
  return { status: 500, body: { error: `internal error: ${(error as Error)?.message ?? String(error)}` }, headers: {} };
}

export function errorHandler(bodyLimitBytes: number) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    const http = toHttpError(error, bodyLimitBytes);
    // Overload, timeouts, draining and not-ready models are operating conditions that metrics count; a 500 is a fault.
    if (http.status === 500) request.log.error({ err: error, url: request.url }, 'request failed');
    void reply.code(http.status).headers(http.headers).send(http.body);
  };
}
