/**
 * Whether `path` reaches oidc-provider's route `route` (a path without parameters): its router also
 * takes the route with one trailing slash ("/device/"), so middleware in front of a route must too.
 * (Nyckel's app hands oidc-provider only the routes' exact paths, case and all: src/provider/provider.ts.)
 */
export function sameRoute(path: string, route: string): boolean {
  return path === route || path === `${route}/`;
}
