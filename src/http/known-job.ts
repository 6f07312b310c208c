import { HTTPException } from 'hono/http-exception';
import type { Registry } from '../jobs/registry.ts';

/** Returns a check that throws a 404 for anything that is not a registered job, before any query uses the name. */
export function knownJobOf(registry: Registry): (name: string) => string {
  return (name) => {
    if (!registry.has(name)) throw new HTTPException(404, { message: `unknown job "${name.slice(0, 100)}"; known jobs: ${[...registry.keys()].join(', ')}` });
    return name;
  };
}
