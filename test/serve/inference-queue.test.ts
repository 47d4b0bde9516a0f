import t from 'tap';
import { isEdgerunError } from '../../daemon/errors.ts';
import { InferenceQueue } from '../../daemon/serve/inference-queue.ts';

const far = () => performance.now() + 60_000;
const limits = (maxConcurrency: number, maxQueue: number) => ({ maxConcurrency, maxQueue, retryAfterSeconds: 2 });

t.test('up to maxConcurrency enter at once; others wait in FIFO order and get the slot on release', async (t) => {
  const queue = new InferenceQueue('m', limits(2, 10));
  const first = await queue.enter(far());
  const second = await queue.enter(far());
  t.equal(queue.active, 2);
  const order: number[] = [];
  const waiting = [3, 4, 5].map((n) => queue.enter(far()).then((release) => { order.push(n); return release; }));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(queue.depth, 3);
  t.same(order, []);
  first();
  first();
  const third = await waiting[0];
  t.same(order, [3], 'a double release frees one slot only');
  t.equal(queue.active, 2);
  second();
  third();
  const [, fourth, fifth] = await Promise.all(waiting);
  t.same(order, [3, 4, 5]);
  fourth();
  fifth();
  t.equal(queue.active, 0);
  t.equal(queue.depth, 0);
});

t.test('a full queue refuses at once with EDGERUN_ERR_OVERLOADED and the retry delay', async (t) => {
  const queue = new InferenceQueue('m', limits(1, 1));
  const running = await queue.enter(far());
  const queued = queue.enter(far());
  const refused = await queue.enter(far()).catch((error: unknown) => error);
  t.ok(isEdgerunError(refused, 'EDGERUN_ERR_OVERLOADED'));
  t.match(refused, { context: { model: 'm', retryAfterSeconds: 2 } });
  running();
  (await queued)();
  const none = new InferenceQueue('n', limits(1, 0));
  const only = await none.enter(far());
  t.ok(isEdgerunError(await none.enter(far()).catch((e: unknown) => e), 'EDGERUN_ERR_OVERLOADED'), 'maxQueue 0: no waiting at all');
  only();
});

t.test('a waiter past its deadline leaves the queue with EDGERUN_ERR_TIMEOUT; the slot goes to the next', async (t) => {
  const queue = new InferenceQueue('m', limits(1, 5));
  const running = await queue.enter(far());
  const hurried = queue.enter(performance.now() + 20).catch((error: unknown) => error);
  const patient = queue.enter(far());
  t.ok(isEdgerunError(await hurried, 'EDGERUN_ERR_TIMEOUT'));
  t.equal(queue.depth, 1);
  running();
  const release = await patient;
  t.equal(queue.active, 1);
  release();
  t.equal(queue.active, 0);
});
