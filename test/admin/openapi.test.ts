import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import YAML from 'yaml';
import { loadSettings } from '../../src/config/settings.ts';
import { ADMIN_PREFIX, adminApiRoutes, type AdminDependencies } from '../../src/admin/routes.ts';
import { newMasterKey } from '../../src/security/crypto.ts';
import { projectRoot } from '../support/process.ts';

/** docs/admin-api.openapi.yaml describes exactly the routes the admin router serves. */
const file = path.join(projectRoot, 'docs/admin-api.openapi.yaml');

/** `METHOD /path/{param}` for every route of the router (its middleware and catch-all left out). */
function routerRoutes(): string[] {
  const settings = loadSettings({ NODE_ENV: 'test', NYCKEL_MASTER_KEY: newMasterKey() });
  // Building the router touches none of its dependencies but the settings.
  const router = adminApiRoutes({ settings } as AdminDependencies);
  return router.stack
    .filter((layer) => layer.methods.length > 0 && !String(layer.path).includes('*'))
    .flatMap((layer) => {
      const template = String(layer.path)
        .slice(ADMIN_PREFIX.length)
        .replace(/:([A-Za-z]+)/g, '{$1}');
      return layer.methods.filter((method) => method !== 'HEAD').map((method) => `${method} ${template}`);
    })
    .sort();
}

describe('the admin API OpenAPI document', () => {
  const document = YAML.parse(fs.readFileSync(file, 'utf8'), { uniqueKeys: true }) as {
    openapi: string;
    paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, unknown> }>>;
    components: { securitySchemes: Record<string, { flows?: { clientCredentials?: { scopes: Record<string, string> } } }> };
  };
  const documented = Object.entries(document.paths)
    .flatMap(([route, item]) =>
      Object.keys(item)
        .filter((key) => key !== 'parameters')
        .map((method) => `${method.toUpperCase()} ${route}`),
    )
    .sort();

  test('parses as OpenAPI 3.1 with the client_credentials scheme and the admin scope', () => {
    expect(document.openapi).toBe('3.1.0');
    expect(document.components.securitySchemes.adminToken.flows?.clientCredentials?.scopes).toHaveProperty(['nyckel:admin']);
  });

  test('lists every route of the router, and no other', () => {
    const served = routerRoutes();
    expect(served.length).toBeGreaterThanOrEqual(13);
    expect(documented).toEqual(served);
  });

  test('every operation has an id and documents 401 and 403', () => {
    for (const [route, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        if (method === 'parameters') continue;
        expect([`${method} ${route}`, operation.operationId]).toEqual([`${method} ${route}`, expect.any(String)]);
        expect(Object.keys(operation.responses ?? {})).toEqual(expect.arrayContaining(['401', '403']));
      }
    }
  });

  test('every $ref points at something in the document', () => {
    const text = fs.readFileSync(file, 'utf8');
    const all = YAML.parse(text) as Record<string, unknown>;
    for (const [, ref] of text.matchAll(/\$ref: '#\/([^']+)'/g)) {
      const target = ref.split('/').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], all);
      expect([ref, target !== undefined]).toEqual([ref, true]);
    }
  });
});
