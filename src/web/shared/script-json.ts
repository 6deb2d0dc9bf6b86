/**
 * JSON to put inside a `<script type="application/json">` element (rendered with `| safe`): `<`, `>`
 * and `&` are escaped so that nothing in it (a user's name in WebAuthn options) can close the element.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value ?? {})
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026');
}
