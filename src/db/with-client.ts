import pg from 'pg';

/** Runs `fn` on a client of its own, connected to `url`, and always ends that client. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>, config: Omit<pg.ClientConfig, 'connectionString'> = {}): Promise<T> {
  const client = new pg.Client({ ...config, connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
