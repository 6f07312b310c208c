import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { compress } from 'hono/compress';
import type { BlankEnv } from 'hono/types';
import pkg from '../../package.json' with { type: 'json' };
import { BEARER_SCHEME } from './lib/contract.ts';
import { assetOf, createAssetCache, loadAsset, serveAsset } from './static-assets.ts';

/**
 * The contract, served: `GET /openapi.json` (OpenAPI 3.1, built from the routes' own zod schemas)
 * and `GET /docs`, a Swagger UI served by this service from the swagger-ui-dist package, so the page
 * loads nothing from any other host (its Content-Security-Policy says so to the browser too).
 * Neither needs a token: clients generate code from the document, and the page asks for the token
 * (Authorize) before it calls a route.
 */

const DOCUMENT_CONFIG = {
  openapi: '3.1.0',
  info: {
    title: 'MemoDrops job scheduler',
    version: pkg.version,
    description:
      'Schedules, manual runs and run history of the MemoDrops jobs, and the data they produce. ' +
      'Every error is `{ "error": "..." }`. With API_TOKEN set, every /api route needs `Authorization: Bearer <token>`.',
  },
};

/** Files of swagger-ui-dist the page loads, and their types; nothing else in the package is served. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

// The package's own absolute-path helper, without loading its browser bundle into the server.
const swaggerUiDir = (): string => (createRequire(import.meta.url)('swagger-ui-dist/absolute-path.js') as () => string)();

/** Kept out of the page so the CSP can forbid inline scripts. */
const INIT_SCRIPT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  validatorUrl: null,
  deepLinking: true,
  displayRequestDuration: true,
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${DOCUMENT_CONFIG.info.title} API</title>
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
`;

/** Swagger UI styles elements inline and draws its icons from data: URIs; everything else is this origin. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

export function registerOpenApi(app: OpenAPIHono<BlankEnv>): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', BEARER_SCHEME);

  let document: object | undefined;
  // Built at the first request, once every route is registered; routes do not change after.
  app.get('/openapi.json', (c) => c.json((document ??= app.getOpenAPI31Document(DOCUMENT_CONFIG))));

  app.get('/docs', (c) => {
    c.header('Content-Security-Policy', CSP);
    return c.html(PAGE);
  });

  const asset = createAssetCache();
  app.use('/docs/*', compress());
  app.get('/docs/assets/:file', async (c) => {
    const file = c.req.param('file');
    const type = file === 'init.js' ? 'text/javascript; charset=utf-8' : ASSETS[file];
    if (!type) return c.notFound();
    const found = await asset(file, async () => (file === 'init.js' ? assetOf(new TextEncoder().encode(INIT_SCRIPT), type) : loadAsset(join(swaggerUiDir(), file), type)));
    return serveAsset(found, c.req.header('if-none-match'));
  });
}
