'use strict';

// Protocol error codes (docs/PROTOCOL.md, "Error codes").
const CODES = Object.freeze({
  BAD_FRAME: 1, TOO_LARGE: 2, NO_ROUTE: 3, FORBIDDEN: 4, BUSY: 5,
  UNAVAILABLE: 6, TIMEOUT: 7, INTERNAL: 8, BAD_REQUEST: 9,
});
const NAMES = Object.freeze(Object.fromEntries(Object.entries(CODES).map(([k, v]) => [v, k])));

function codeName(status) {
  return NAMES[status] || String(status);
}

/**
 * An error with a pipehub code: from an ERROR frame (status = its code), or
 * raised locally (BUSY when the outgoing queue is full, TOO_LARGE, ...), or
 * thrown by a route handler to answer with that ERROR.
 *   new PipehubError('NO_ROUTE', 'msg') / new PipehubError(300, 'msg')
 * code: the name ('NO_ROUTE') or, for codes without one, the decimal string.
 * status: the number.
 */
class PipehubError extends Error {
  constructor(code, message, options) {
    let status;
    if (typeof code === 'number') {
      status = code;
    } else if (typeof code === 'string' && Object.prototype.hasOwnProperty.call(CODES, code)) {
      status = CODES[code];
    } else if (typeof code === 'string' && /^[0-9]+$/.test(code)) {
      status = Number(code);
    } else {
      throw new TypeError(`PipehubError: unknown code ${JSON.stringify(code)}`);
    }
    if (!Number.isInteger(status) || status < 0 || status > 0xffffffff) {
      throw new RangeError(`PipehubError: code ${status} not 0..4294967295`);
    }
    const name = codeName(status);
    super(message === undefined || message === '' ? name : message, options);
    this.name = 'PipehubError';
    this.code = name;
    this.status = status;
  }
}

/** A local failure: an Error with a string code (ETIMEDOUT, ECLOSED, ...). */
function localError(code, message, cause) {
  const err = new Error(message, cause ? { cause } : undefined);
  err.code = code;
  return err;
}

class AbortError extends Error {
  constructor(message = 'The operation was aborted', options) {
    super(message, options);
    this.name = 'AbortError';
    this.code = 'ABORT_ERR';
  }
}

function abortError(signal) {
  return new AbortError('The operation was aborted',
    signal && signal.reason !== undefined ? { cause: signal.reason } : undefined);
}

module.exports = { CODES, codeName, PipehubError, AbortError, abortError, localError };
