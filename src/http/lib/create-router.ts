import { OpenAPIHono } from '@hono/zod-openapi';
import type { BlankEnv } from 'hono/types';
import { defaultHook } from './validation.ts';

/** A router whose routes report invalid input through the one defaultHook. */
export const createRouter = () => new OpenAPIHono<BlankEnv>({ defaultHook });
