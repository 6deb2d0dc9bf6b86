import { z } from 'zod';

/** The account pages' posted forms, checked at the edge (every change carries the CSRF token). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const csrfField = z.string().max(200);
export const plainForm = z.object({ _csrf: csrfField });
export const labelForm = z.object({ _csrf: csrfField, label: z.string().max(200) });
export const codeForm = z.object({ _csrf: csrfField, code: z.string().max(64).default(''), label: z.string().max(200).optional() });
export const contactForm = z.object({ _csrf: csrfField, value: z.string().max(320) });
export const moveForm = z.object({ _csrf: csrfField, direction: z.enum(['top', 'up', 'down']) });
export const passwordForm = z.object({ _csrf: csrfField, current: z.string().max(1024), password: z.string().max(1024), confirm: z.string().max(1024) });
export const credentialForm = z.object({ _csrf: csrfField, credential: z.string().max(16_384).default(''), label: z.string().max(200).optional() });
