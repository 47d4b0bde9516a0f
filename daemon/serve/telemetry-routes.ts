/**
 * Telemetry over HTTP: GET /v2/telemetry/summary (the JSON `edgerun telemetry --json` prints) and GET /dashboard
 * (a page that draws that JSON as SVG charts with inline script: nothing is loaded from elsewhere).
 * Register with `app.register(telemetryRoutes, { store })`; errors go to the app's error handler.
 */
import type { FastifyPluginAsync } from 'fastify';
import { EdgerunError } from '../errors.ts';
import { DASHBOARD_HTML } from '../telemetry/dashboard-page.ts';
import { MODEL_NAME_FILTER, parseSince } from '../telemetry/since.ts';
import type { TelemetryStore } from '../telemetry/store.ts';

export interface TelemetryRoutesOptions {
  store: TelemetryStore;
}

type Query = Record<string, string | string[] | undefined>;

export const telemetryRoutes: FastifyPluginAsync<TelemetryRoutesOptions> = async (app, opts) => {
  const { store } = opts;

  app.get('/v2/telemetry/summary', async (request, reply) => {
    const query = (request.query ?? {}) as Query;
    const now = Date.now();
    const since = parseSince(single(query, 'since') ?? '1h', now, 'EDGERUN_ERR_REQUEST', "query parameter 'since'");
    const model = single(query, 'model');
    if (model !== undefined && !MODEL_NAME_FILTER.test(model)) {
      throw new EdgerunError('EDGERUN_ERR_REQUEST', `query parameter 'model': '${model.slice(0, 80)}' is not a model name`, { field: 'model' });
    }
    const points = single(query, 'points');
    const maxPoints = points === undefined ? undefined : Number(points);
    if (maxPoints !== undefined && !(Number.isInteger(maxPoints) && maxPoints >= 10 && maxPoints <= 1000)) {
      throw new EdgerunError('EDGERUN_ERR_REQUEST', `query parameter 'points': '${points}' is not an integer from 10 to 1000`, { field: 'points' });
    }
    void reply.header('cache-control', 'no-store');
    return store.summary({ since, until: now, model, maxPoints });
  });

  app.get('/dashboard', async (_request, reply) => {
    void reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      // The page runs only its own inline script and talks only to this server.
      .header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
      .header('x-content-type-options', 'nosniff');
    return DASHBOARD_HTML;
  });
};

function single(query: Query, field: string): string | undefined {
  const value = query[field];
  if (Array.isArray(value)) throw new EdgerunError('EDGERUN_ERR_REQUEST', `query parameter '${field}' is given ${value.length} times`, { field });
  return value === '' ? undefined : value;
}
