import { defineConfig } from 'drizzle-kit';

// `npm run db:studio` sets DATABASE_URL to the database the service uses (embedded or not).
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://localhost/memodrops' },
});
