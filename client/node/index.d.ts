// Type definitions for pipehub 0.1.0
/// <reference types="node" />
import { EventEmitter } from 'node:events';

export type Payload = Buffer | Uint8Array | string | undefined | null;

/** Protocol error names (docs/PROTOCOL.md). */
export type ErrorName =
  | 'BAD_FRAME' | 'TOO_LARGE' | 'NO_ROUTE' | 'FORBIDDEN' | 'BUSY'
  | 'UNAVAILABLE' | 'TIMEOUT' | 'INTERNAL' | 'BAD_REQUEST';

export const CODES: Readonly<Record<ErrorName, number>>;

/** The name of a status, or its decimal string when it has none. */
export function codeName(status: number): string;

/** `\\.\pipe\NAME` for a bare name; a `\\.\pipe\` path is kept. */
export function pipePath(pipe: string): string;

/** Does a pattern (topic, `prefix.*` or `*`) match topic? */
export function matches(pattern: string, topic: string): boolean;

/**
 * An ERROR answer (status = its code), a local refusal (BUSY, TOO_LARGE), or
 * thrown by a route handler to answer with that ERROR (applications use
 * codes 256 and up).
 */
export class PipehubError extends Error {
  constructor(code: ErrorName | number | `${number}`, message?: string, options?: { cause?: unknown });
  readonly name: 'PipehubError';
  /** 'NO_ROUTE', ... or the decimal string for codes without a name ('300'). */
  readonly code: ErrorName | string;
  readonly status: number;
}

export class AbortError extends Error {
  readonly name: 'AbortError';
  readonly code: 'ABORT_ERR';
}

/** Local failures carry one of these codes. */
export type LocalErrorCode = 'ETIMEDOUT' | 'ENOENT' | 'ECLOSED' | 'ECONNRESET' | 'EPROTO' | 'EEXIST';
export interface LocalError extends Error {
  code: LocalErrorCode;
}

export interface ReconnectOptions {
  /** First delay before reconnecting (default 100 ms), doubled per failure. */
  initialDelayMs?: number;
  /** Backoff bound (default 5000 ms). */
  maxDelayMs?: number;
  /** Give up (final 'close') after this many failed attempts (default: never). */
  maxAttempts?: number;
}

export interface ConnectOptions {
  /** Bare pipe name or `\\.\pipe\` path (default 'pipehub'). */
  pipe?: string;
  /** Retry while the pipe is busy / absent for this long (default 5000). */
  timeoutMs?: number;
  /** Sent with sys.hello after connecting; the reply is in hub.hello. */
  name?: string;
  /** Reconnect when the pipe breaks (default false). */
  reconnect?: boolean | ReconnectOptions;
  /** Cap on queued outgoing bytes (default 64 MiB). */
  maxQueuedBytes?: number;
  /** FOR TESTS ONLY: connect to this socket path (a Unix domain socket) instead of the pipe. */
  path?: string;
}

export interface CallOptions {
  /** Deadline (default 25000 ms); then the call rejects with code ETIMEDOUT. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface Subscription {
  readonly pattern: string;
  unsubscribe(options?: CallOptions): Promise<void>;
}

export interface HubEvent {
  topic: string;
  payload: Buffer;
}

export interface EventsOptions {
  signal?: AbortSignal;
  /** Most events held unread before the iterator throws PipehubError BUSY (default 10000). */
  maxQueued?: number;
}

export interface Request {
  readonly route: string;
  readonly payload: Buffer;
  /** The hub's id of the forwarded request. */
  readonly id: number;
  /** The caller's connection id (the forwarded REQUEST's status). */
  readonly callerId: number;
  /** sys.client for the caller, parsed JSON. */
  caller(options?: CallOptions): Promise<CallerInfo>;
}

export interface CallerInfo {
  conn_id: number;
  pid: number;
  process_start?: number;
  sid?: string;
  account?: string;
  logon_session?: string;
  integrity?: string;
  integrity_rid?: number;
  exe?: string;
  admin?: boolean;
  [key: string]: unknown;
}

export type Handler = (req: Request) => Payload | void | Promise<Payload | void>;

export interface RegisterOptions {
  exclusive?: boolean;
  /** Text for sys.describe (at most 16 KiB of UTF-8). */
  description?: string;
  timeoutMs?: number;
}

export interface Registration {
  readonly route: string;
  readonly exclusive: boolean;
  readonly description: string;
  /** The hub's answer to sys.register ({route, mode, state, position?}), or null. */
  state: { route: string; mode: string; state: 'serving' | 'waiting'; position?: number } | null;
  unregister(options?: CallOptions): Promise<void>;
}

export interface HubEvents {
  'route.up': [route: string];
  'route.down': [route: string];
  'route.acquired': [route: string];
  /** Final close: no error after close(), else why (ECONNRESET, EPROTO). */
  close: [error?: LocalError];
  /** With reconnect: the pipe broke, reconnecting. */
  disconnect: [error: LocalError];
  /** With reconnect: connected again; errors of restoring subscriptions/registrations. */
  reconnect: [errors: Error[]];
  /** An id-less ERROR from the server (e.g. BAD_FRAME before it closes). */
  serverError: [error: PipehubError];
  /** A subscription callback threw (without a listener it is rethrown). */
  error: [error: unknown];
}

export class Hub extends EventEmitter {
  /** The sys.hello reply when a name was given, else null. */
  readonly hello: Record<string, unknown> | null;
  readonly lastServerError: PipehubError | null;
  readonly connected: boolean;
  /** Calls sent and not answered yet. */
  readonly pending: number;
  /** Outgoing bytes queued and not yet written. */
  readonly queuedBytes: number;

  call(route: string, payload?: Payload, options?: CallOptions): Promise<Buffer>;
  /** Synchronous; throws PipehubError BUSY when the outgoing queue is full. */
  publish(topic: string, payload?: Payload): void;
  subscribe(pattern: string, fn: (topic: string, payload: Buffer) => void, options?: CallOptions): Promise<Subscription>;
  events(pattern: string, options?: EventsOptions): AsyncIterableIterator<HubEvent>;
  register(route: string, handler: Handler, options?: RegisterOptions): Promise<Registration>;
  routes(options?: CallOptions): Promise<Array<Record<string, unknown>>>;
  stats(options?: CallOptions): Promise<Record<string, number>>;
  close(): Promise<void>;

  on<K extends keyof HubEvents>(event: K, listener: (...args: HubEvents[K]) => void): this;
  once<K extends keyof HubEvents>(event: K, listener: (...args: HubEvents[K]) => void): this;
  off<K extends keyof HubEvents>(event: K, listener: (...args: HubEvents[K]) => void): this;
  emit<K extends keyof HubEvents>(event: K, ...args: HubEvents[K]): boolean;
}

export function connect(options?: ConnectOptions): Promise<Hub>;

export interface Frame {
  kind: 1 | 2 | 3 | 4;
  route?: string;
  id?: number;
  status?: number;
  payload?: Payload;
  flags?: number;
}

export interface DecodedFrame {
  kind: 1 | 2 | 3 | 4;
  flags: number;
  id: number;
  status: number;
  route: string;
  payload: Buffer;
}

export namespace codec {
  const HEADER_LEN: 16;
  const VERSION: 1;
  const ROUTE_MAX: 255;
  const MAX_FRAME: number;
  const KIND: { readonly REQUEST: 1; readonly REPLY: 2; readonly EVENT: 3; readonly ERROR: 4 };
  class FrameError extends Error {
    readonly code: 'EPROTO';
    frames?: DecodedFrame[];
  }
  class Decoder {
    constructor(options?: { maxFrame?: number });
    readonly maxFrame: number;
    readonly buffered: number;
    error: FrameError | null;
    /** Frames completed by chunk; throws FrameError on a malformed frame. */
    push(chunk: Uint8Array): DecodedFrame[];
  }
  function encode(frame: Frame, maxFrame?: number): Buffer;
  function frameSize(routeLen: number, payloadLen: number): number;
  function toBuffer(payload: Payload): Buffer;
  function isValidRoute(route: string): boolean;
}
