// ESM entry: re-exports the CommonJS implementation.
import cjs from './index.js';

export const {
  connect, Hub, PipehubError, AbortError, Subscription, Registration, Request,
  CODES, codeName, pipePath, matches, codec,
} = cjs;
export default cjs;
