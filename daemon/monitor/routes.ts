/**
 * The monitor's HTTP side (docs/MONITOR.md): the dashboard page at / and the JSON API behind it.
 *   GET /api/fleet                                        devices: status, models, latest deployment, last seen, report gaps
 *   GET /api/telemetry?since=1h&by=device|model&device=&model=&points=   chart series (see series.ts)
 *   GET /api/rollouts                                     per rollout (or lone deployment): devices by state
 *   GET /api/stats                                        messages received, stored, duplicates, bad payloads, seq gaps
 * Register with `app.register(monitorRoutes, { store, collector })`; errors go to the app's error handler.
 */
import type { FastifyPluginAsync } from 'fastify';
import { EdgerunError } from '../errors.ts';
import { FLEET_NAME_PATTERN } from '../fleet/protocol.ts';
import { MODEL_NAME_FILTER, parseSince } from '../telemetry/since.ts';
import type { FleetCollector } from './collector.ts';
import { MONITOR_HTML } from './dashboard-page.ts';
import { buildSeries, type SeriesBy } from './series.ts';
import type { MonitorStore } from './store-types.ts';

export interface MonitorRoutesOptions {
  store: MonitorStore;
  collector?: FleetCollector;
}

type Query = Record<string, string | string[] | undefined>;

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // The page runs only its own inline script and talks only to this server.
  'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
};

export const monitorRoutes: FastifyPluginAsync<MonitorRoutesOptions> = async (app, opts) => {
  const { store, collector } = opts;

  app.get('/api/fleet', async (_request, reply) => {
    void reply.header('cache-control', 'no-store');
    return { generatedAt: Date.now(), devices: await store.devices() };
  });

  app.get('/api/telemetry', async (request, reply) => {
    const query = (request.query ?? {}) as Query;
    const now = Date.now();
    const since = parseSince(single(query, 'since') ?? '1h', now, 'EDGERUN_ERR_REQUEST', "query parameter 'since'");
    const by = single(query, 'by') ?? 'device';
    if (by !== 'device' && by !== 'model') throw requestError('by', `'${by.slice(0, 40)}' is not 'device' or 'model'`);
    const device = single(query, 'device');
    if (device !== undefined && !FLEET_NAME_PATTERN.test(device)) throw requestError('device', `'${device.slice(0, 80)}' is not a device id`);
    const model = single(query, 'model');
    if (model !== undefined && !MODEL_NAME_FILTER.test(model)) throw requestError('model', `'${model.slice(0, 80)}' is not a model name`);
    const points = single(query, 'points');
    const maxPoints = points === undefined ? 120 : Number(points);
    if (!(Number.isInteger(maxPoints) && maxPoints >= 10 && maxPoints <= 1000)) throw requestError('points', `'${points}' is not an integer from 10 to 1000`);
    const rows = await store.telemetry({ since, until: now, deviceId: device, model });
    void reply.header('cache-control', 'no-store');
    return { ...buildSeries(rows, by as SeriesBy, since, now, maxPoints), device: device ?? null, model: model ?? null };
  });

  app.get('/api/rollouts', async (_request, reply) => {
    void reply.header('cache-control', 'no-store');
    return { generatedAt: Date.now(), rollouts: await store.rollouts() };
  });

  app.get('/api/stats', async (_request, reply) => {
    void reply.header('cache-control', 'no-store');
    return { generatedAt: Date.now(), store: store.description, messages: collector?.stats() ?? null, counts: await store.counts(), gaps: await store.gaps() };
  });

  for (const url of ['/', '/dashboard']) {
    app.get(url, async (_request, reply) => {
      void reply.headers(PAGE_HEADERS);
      return MONITOR_HTML;
    });
  }
};

function requestError(field: string, reason: string): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_REQUEST', `query parameter '${field}': ${reason}`, { field });
}

function single(query: Query, field: string): string | undefined {
  const value = query[field];
  if (Array.isArray(value)) throw requestError(field, `is given ${value.length} times`);
  return value === '' ? undefined : value;
}
