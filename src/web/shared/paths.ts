/** "Delete all my devices" is reached with the password alone: the user has lost their second factor. */
export const LOST_DEVICE_PATH = '/account/lost-device';
