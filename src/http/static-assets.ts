import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/**
 * Files the service serves from the repository and from npm packages (the console, the API
 * reference): read once per process, on first request, and revalidated by ETag on every load.
 */

export type Asset = { body: Uint8Array<ArrayBuffer>; type: string; etag: string };

export const assetOf = (body: Uint8Array<ArrayBuffer>, type: string): Asset => ({ body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });

export const loadAsset = async (path: string, type: string): Promise<Asset> => assetOf(new Uint8Array(await readFile(path)), type);

/**
 * Assets by key, each loaded once: the files do not change while the service runs. A load that
 * fails is forgotten (the next request tries again), and only keys the caller recognised are ever
 * added, so requests for other names cannot grow the map.
 */
export function createAssetCache(): (key: string, load: () => Promise<Asset>) => Promise<Asset> {
  const assets = new Map<string, Promise<Asset>>();
  return (key, load) => {
    let found = assets.get(key);
    if (!found) {
      found = load();
      assets.set(key, found);
      found.catch(() => assets.delete(key));
    }
    return found;
  };
}

/**
 * The response for an asset. no-cache: revalidated every load (a 304 when unchanged), so a new
 * release is never stale. Compared weakly (RFC 9110): compression turns the ETag sent into a weak one.
 */
export function serveAsset(found: Asset, ifNoneMatch: string | undefined): Response {
  const headers = { 'Content-Type': found.type, ETag: found.etag, 'Cache-Control': 'no-cache' };
  if (ifNoneMatch?.replace(/^W\//, '') === found.etag) return new Response(null, { status: 304, headers });
  return new Response(found.body, { status: 200, headers });
}
