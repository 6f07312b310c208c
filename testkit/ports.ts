import { createServer, type AddressInfo } from 'node:net';

/** Ports other things on this machine may use (the service's and embedded PostgreSQL's defaults); never handed out. */
const RESERVED_PORTS = new Set([54329, 3333]);

/** A free TCP port on 127.0.0.1, never one of the reserved ones. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', reject);
      probe.listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    if (!RESERVED_PORTS.has(port)) return port;
  }
}
