import { pino, destination, type Logger } from 'pino';

/** The root logger. Components take a child: `logger.child({ component: 'gpu' })`. */
export const logger: Logger = pino({
  level: process.env.EDGERUN_LOG_LEVEL ?? 'info',
  base: { app: 'edgerun' },
}, destination({ dest: 2, sync: false }));

export type { Logger };
