import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { compress } from 'hono/compress';
import type { BlankEnv } from 'hono/types';
import { createAssetCache, loadAsset, serveAsset } from './static-assets.ts';

/**
 * The operator console: `GET /` is its page; `/console/app/*` its own modules and styles (the
 * repository's console/ folder, served as they are: no build step) and `/console/vendor/*` the few
 * files it takes from npm packages. The page loads nothing from any other host, and its
 * Content-Security-Policy tells the browser so. Every script is a file of this origin except the
 * import map, allowed by its hash.
 */

const APP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'console');

/** The npm files the page loads, by the name it loads them under; nothing else in those packages is served. */
const VENDOR: Record<string, { pkg: string; file: string }> = {
  'preact.js': { pkg: 'preact', file: 'dist/preact.mjs' },
  'preact-hooks.js': { pkg: 'preact', file: 'hooks/dist/hooks.mjs' },
  'htm.js': { pkg: 'htm', file: 'dist/htm.module.js' },
  'uplot.js': { pkg: 'uplot', file: 'dist/uPlot.esm.js' },
  'uplot.css': { pkg: 'uplot', file: 'dist/uPlot.min.css' },
};

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Bare specifiers the modules import, mapped to the vendor files. */
const IMPORT_MAP = JSON.stringify({
  imports: {
    preact: '/console/vendor/preact.js',
    'preact/hooks': '/console/vendor/preact-hooks.js',
    htm: '/console/vendor/htm.js',
    uplot: '/console/vendor/uplot.js',
  },
});

const IMPORT_MAP_HASH = `'sha256-${createHash('sha256').update(IMPORT_MAP).digest('base64')}'`;

const CSP = [
  "default-src 'self'",
  `script-src 'self' ${IMPORT_MAP_HASH}`,
  // uPlot and the charts set element styles from script (CSSOM), which style-src 'self' allows.
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>MemoDrops scheduler</title>
  <link rel="icon" href="/console/app/icon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/console/vendor/uplot.css">
  <link rel="stylesheet" href="/console/app/style.css">
  <script type="importmap">${IMPORT_MAP}</script>
  <script type="module" src="/console/app/main.js"></script>
</head>
<body>
  <div id="app"><p class="loading">Loading…</p></div>
  <noscript>The console needs JavaScript. The API is documented at <a href="/docs">/docs</a>.</noscript>
</body>
</html>
`;

/** Every file under console/ with a type we serve, by its path below it ("pages/runs.js"). */
async function appFiles(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(APP_DIR, { recursive: true, withFileTypes: true })) {
    const type = TYPES[extname(entry.name)];
    if (!entry.isFile() || !type) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(APP_DIR, path).split(sep).join('/'), path);
  }
  return files;
}

/** The folder of an installed package: up from its entry point to its package.json (not every package exports that file). */
async function packageDir(require: NodeJS.Require, name: string): Promise<string> {
  for (let dir = dirname(require.resolve(name)); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = await readFile(join(dir, 'package.json'), 'utf8').catch(() => null);
    if (manifest !== null && (JSON.parse(manifest) as { name?: string }).name === name) return dir;
  }
  throw new Error(`no package.json of ${name} above ${require.resolve(name)}`);
}

export function registerConsole(app: OpenAPIHono<BlankEnv>): void {
  const require = createRequire(import.meta.url);
  const asset = createAssetCache();
  // Listed once; only files that exist are served.
  let listed: Promise<Map<string, string>> | undefined;

  app.use('/console/*', compress());
  app.get('/console/app/*', async (c) => {
    const name = c.req.path.slice('/console/app/'.length);
    const path = (await (listed ??= appFiles())).get(name);
    if (!path) return c.notFound();
    return serveAsset(await asset(`app:${name}`, () => loadAsset(path, TYPES[extname(path)]!)), c.req.header('if-none-match'));
  });
  app.get('/console/vendor/:file', async (c) => {
    const file = c.req.param('file');
    const vendor = VENDOR[file];
    if (!vendor) return c.notFound();
    const found = await asset(`vendor:${file}`, async () => loadAsset(join(await packageDir(require, vendor.pkg), vendor.file), TYPES[extname(file)]!));
    return serveAsset(found, c.req.header('if-none-match'));
  });

  app.use('/', compress());
  app.get('/', (c) => {
    c.header('Content-Security-Policy', CSP);
    c.header('Cache-Control', 'no-cache');
    return c.html(PAGE);
  });
}
