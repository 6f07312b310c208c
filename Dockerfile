# Single-container deploy: the service and, unless DATABASE_URL is set, its embedded PostgreSQL.
# Pinned: Node >= 22.18 runs the TypeScript sources (type stripping), and this is the Node the
# repository's `node` devDependency installs, which runs the tests (test/container.test.ts).
FROM node:22.23.3-bookworm-slim

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3333 \
    DATA_DIR=/data

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY src ./src
COPY drizzle ./drizzle

# Non-root; the embedded database lives on the volume and survives container replacement.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3333

# HOST=0.0.0.0 makes the service refuse to start without API_TOKEN: pass -e API_TOKEN=...
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Node 22.18+ runs the TypeScript sources directly (type stripping); no build step.
CMD ["node", "src/main.ts"]
