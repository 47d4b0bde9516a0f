/**
 * Progress for long compression steps, on stderr: a redrawn bar when stderr is a terminal, otherwise one plain
 * line at the start, about every 10 % and at the end (so logs and CI output stay readable).
 */
export interface ProgressTask {
  tick(count?: number): void;
  done(): void;
}

export interface Progress {
  start(step: string, total: number): ProgressTask;
}

export const silentProgress: Progress = {
  start: () => ({ tick: () => undefined, done: () => undefined }),
};

const BAR_WIDTH = 30;

export function streamProgress(stream: NodeJS.WritableStream & { isTTY?: boolean }): Progress {
  const tty = stream.isTTY === true;
  return {
    start(step: string, total: number): ProgressTask {
      const started = performance.now();
      let current = 0;
      let lastDecile = -1;
      const seconds = (): string => `${((performance.now() - started) / 1000).toFixed(1)} s`;
      const draw = (): void => {
        const fraction = total > 0 ? Math.min(1, current / total) : 1;
        if (tty) {
          const filled = Math.round(fraction * BAR_WIDTH);
          stream.write(`\r${step.padEnd(22)} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${current}/${total} ${seconds()}`);
          return;
        }
        const decile = Math.floor(fraction * 10);
        if (decile !== lastDecile) {
          lastDecile = decile;
          stream.write(`${step}: ${current}/${total} (${Math.round(fraction * 100)} %) ${seconds()}\n`);
        }
      };
      draw();
      return {
        tick(count = 1) {
          current += count;
          draw();
        },
        done() {
          current = total;
          if (tty) {
            draw();
            stream.write('\n');
          } else if (lastDecile !== 10) {
            draw();
          }
        },
      };
    },
  };
}
