/** How the config schema is compiled: at build time (scripts/compile-schema.js) and, from sources, at load. */
export const AJV_OPTIONS = { allErrors: true, strict: false, verbose: true } as const;
