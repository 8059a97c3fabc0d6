// The rendezvous against whatever listens on MASTER_PORT: a TCP server that accepts and says nothing, one that
// answers garbage, and one that closes at once; initProcessGroup rejects with a DISTRIBUTED TorchError within its
// timeout (it used to stay pending forever; PyTorch 1.13 hangs too). And the bounds c10d has on world size.
import { describe, it, expect } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { distributed as dist, TorchError } from '../lib/index.js';

async function listen(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as { port: number }).port, sockets };
}

/** How the promise settles, and after how long; 'pending' if not within `limit` ms. */
async function settle(p: Promise<unknown>, limit: number): Promise<{ how: string; err?: unknown; ms: number }> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(
      () => ({ how: 'resolved' }),
      (err: unknown) => ({ how: 'rejected', err }),
    ),
    new Promise<{ how: string }>((res) => {
      timer = setTimeout(() => res({ how: 'pending' }), limit);
    }),
  ]);
  clearTimeout(timer);
  return { ...r, ms: Date.now() - t0 };
}

const timeout = 2000;
const servers: [string, (s: Socket) => void][] = [
  ['accepts and says nothing', () => {}],
  ['answers every message with garbage', (s) => s.on('data', () => s.write(Buffer.alloc(64, 0xab)))],
  ['sends garbage as soon as it accepts', (s) => s.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'))],
  ['closes at once', (s) => s.destroy()],
];

describe.skipIf(!dist.isAvailable())('initProcessGroup settles within its timeout whatever answers on the port', () => {
  for (const [what, behave] of servers) {
    it(`a server that ${what}: a DISTRIBUTED rejection within the ${timeout} ms timeout`, async () => {
      const { server, port, sockets } = await listen(behave);
      try {
        const r = await settle(
          dist.initProcessGroup({ rank: 1, worldSize: 2, initMethod: `tcp://127.0.0.1:${port}`, timeout }),
          timeout + 20_000,
        );
        expect(r.how).toBe('rejected');
        expect(r.err).toBeInstanceOf(TorchError);
        expect((r.err as TorchError).code).toBe('DISTRIBUTED');
        expect((r.err as Error).message).toMatch(/^initProcessGroup failed: /);
        // the timeout plus the time a loaded machine takes to notice
        expect(r.ms).toBeLessThan(timeout + 10_000);
        expect(dist.isInitialized()).toBe(false);
      } finally {
        for (const s of sockets) s.destroy();
        server.close();
      }
    });
  }

  it('worldSize and rank within the bounds of c10d (an int): 2^31 is refused', async () => {
    const base = { initMethod: 'tcp://127.0.0.1:1', timeout: 1000 };
    await expect(dist.initProcessGroup({ ...base, rank: 0, worldSize: 2 ** 31 })).rejects.toThrow(RangeError);
    await expect(dist.initProcessGroup({ ...base, rank: 0, worldSize: 2 ** 31 })).rejects.toThrow(
      'Expected a world size of at most 2147483647 (2^31 - 1) for worldSize but received 2147483648 of type number',
    );
    await expect(dist.initProcessGroup({ ...base, rank: 2 ** 31 - 1, worldSize: 2 ** 31 - 1 })).rejects.toThrow(
      RangeError,
    );
    await expect(dist.initProcessGroup({ ...base, rank: -1, worldSize: 2 })).rejects.toThrow(RangeError);
  });
});
