// meetguard's browser end-to-end key client (docs/e2ee.md, protocol v2).
export * from './bytes.js';
export * from './client.js';
export * from './errors.js';
export * from './hpke.js';
export * from './keyschedule.js';
export * from './merkle.js';
export * from './signer.js';
export * from './transport.js';
export * from './wire.js';
