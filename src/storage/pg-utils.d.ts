/** node-postgres's own value preparation (how a JavaScript value becomes a statement parameter). */
declare module 'pg/lib/utils.js' {
  const utils: { prepareValue(value: unknown): string | Buffer | null };
  export default utils;
}
