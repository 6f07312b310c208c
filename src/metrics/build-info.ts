import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Gauge, type Registry } from 'prom-client';

export type BuildVersions = { version: string; pgBossVersion: string; nodeVersion: string };

const versionIn = (path: string | URL): string => {
  const { version } = JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown };
  return typeof version === 'string' ? version : 'unknown';
};

/** This service's version and pg-boss's, from their package.json files; Node's from the runtime. */
export function readBuildVersions(): BuildVersions {
  return {
    version: versionIn(new URL('../../package.json', import.meta.url)),
    pgBossVersion: versionIn(createRequire(import.meta.url).resolve('pg-boss/package.json')),
    nodeVersion: process.version,
  };
}

/** `scheduler_build_info{version,pg_boss_version,node_version} 1`, the Prometheus way to say what runs. */
export function registerBuildInfo(registry: Registry, { version, pgBossVersion, nodeVersion }: BuildVersions): void {
  const info = new Gauge({
    name: 'scheduler_build_info',
    help: 'Always 1; its labels say which versions of the service, pg-boss and Node.js this instance runs.',
    labelNames: ['version', 'pg_boss_version', 'node_version'] as const,
    registers: [registry],
  });
  info.set({ version, pg_boss_version: pgBossVersion, node_version: nodeVersion }, 1);
}
