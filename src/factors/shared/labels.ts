/** Control characters (C0 and DEL): never kept in a name a user or a device gives (a label, a phone's name). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;
