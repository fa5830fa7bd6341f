// The IVS Chat messaging protocol as the console's live chat panel speaks it
// (spec: messaging.md): a WebSocket to the messaging endpoint with the chat
// token as the only sub-protocol, JSON requests with PascalCase keys and a
// RequestId, and MESSAGE / EVENT / ERROR frames back. No DOM here, so the
// frame parsing is testable under Node.

/** A chat message as every connection in the room receives it. */
export interface MessageFrame {
  type: 'MESSAGE';
  id: string;
  requestId: string;
  content: string;
  attributes: Record<string, string>;
  sendTime: string;
  sender: { userId: string; attributes: Record<string, string> };
}

/** An event: SendEvent's, or the system events aws:DELETE_MESSAGE and aws:DISCONNECT_USER. */
export interface EventFrame {
  type: 'EVENT';
  id: string;
  requestId: string;
  eventName: string;
  attributes: Record<string, string>;
  sendTime: string;
}

/** A refused request, sent to the requesting connection only. */
export interface ErrorFrame {
  type: 'ERROR';
  id: string;
  requestId: string;
  errorCode: number;
  errorMessage: string;
}

/** What the server sent that is none of the above; kept so the log can show it. */
export interface InvalidFrame {
  type: 'INVALID';
  raw: string;
  problem: string;
}

export type Frame = MessageFrame | EventFrame | ErrorFrame;

export const DELETE_MESSAGE_EVENT = 'aws:DELETE_MESSAGE';
export const DISCONNECT_USER_EVENT = 'aws:DISCONNECT_USER';

class FrameError extends Error {}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Keys are matched case-insensitively, as the server matches requests'
// (the spec: PascalCase in practice, lowercase seen in the wild).
function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return obj[k];
  return undefined;
}

function str(obj: Record<string, unknown>, name: string, required: boolean): string {
  const v = field(obj, name);
  if (typeof v === 'string') return v;
  if (!required && (v === undefined || v === null)) return '';
  throw new FrameError(`${name} is ${v === undefined ? 'missing' : 'not a string'}`);
}

function stringMap(obj: Record<string, unknown>, name: string): Record<string, string> {
  const v = field(obj, name);
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new FrameError(`${name} is not an object`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new FrameError(`${name}.${k} is not a string`);
    out[k] = val;
  }
  return out;
}

/**
 * Parses one text frame from the server. Anything that is not a valid
 * MESSAGE, EVENT or ERROR frame comes back as an InvalidFrame with the
 * reason, never as an exception.
 */
export function parseFrame(raw: string): Frame | InvalidFrame {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { type: 'INVALID', raw, problem: 'not JSON' };
  }
  if (!isObject(data)) return { type: 'INVALID', raw, problem: 'not a JSON object' };
  try {
    const type = str(data, 'Type', true);
    const id = str(data, 'Id', true);
    const requestId = str(data, 'RequestId', false);
    switch (type) {
      case 'MESSAGE': {
        const sender = field(data, 'Sender');
        if (!isObject(sender)) throw new FrameError('Sender is not an object');
        return {
          type,
          id,
          requestId,
          content: str(data, 'Content', true),
          attributes: stringMap(data, 'Attributes'),
          sendTime: str(data, 'SendTime', true),
          sender: { userId: str(sender, 'UserId', true), attributes: stringMap(sender, 'Attributes') },
        };
      }
      case 'EVENT':
        return {
          type,
          id,
          requestId,
          eventName: str(data, 'EventName', true),
          attributes: stringMap(data, 'Attributes'),
          sendTime: str(data, 'SendTime', true),
        };
      case 'ERROR': {
        const code = field(data, 'ErrorCode');
        if (typeof code !== 'number' || !Number.isInteger(code)) throw new FrameError('ErrorCode is not an integer');
        return { type, id, requestId, errorCode: code, errorMessage: str(data, 'ErrorMessage', true) };
      }
      default:
        throw new FrameError(`unknown Type ${JSON.stringify(type)}`);
    }
  } catch (err) {
    if (err instanceof FrameError) return { type: 'INVALID', raw, problem: err.message };
    throw err;
  }
}

/** The message ID an aws:DELETE_MESSAGE event names (MessageId, or the older MessageID). */
export function deletedMessageId(ev: EventFrame): string | undefined {
  if (ev.eventName !== DELETE_MESSAGE_EVENT) return undefined;
  return ev.attributes.MessageId || ev.attributes.MessageID || undefined;
}

/** The user ID an aws:DISCONNECT_USER event names. */
export function disconnectedUserId(ev: EventFrame): string | undefined {
  if (ev.eventName !== DISCONNECT_USER_EVENT) return undefined;
  return ev.attributes.UserId || undefined;
}

// ---- requests ----

export type Request =
  | { Action: 'SEND_MESSAGE'; RequestId: string; Content: string; Attributes?: Record<string, string> }
  | { Action: 'DELETE_MESSAGE'; RequestId: string; Id: string; Reason?: string }
  | { Action: 'DISCONNECT_USER'; RequestId: string; UserId: string; Reason?: string };

/** A request before the connection gives it its RequestId. */
export type UnsentRequest = Request extends infer R ? (R extends unknown ? Omit<R, 'RequestId'> : never) : never;

/**
 * A UUIDv4 for RequestId, as the official SDK sends. getRandomValues, not
 * randomUUID: the latter exists in secure contexts only, and the console may
 * be served over plain http from a non-loopback host.
 */
export function newRequestId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The messaging endpoint of the server that serves the console: its main listener answers WebSockets on /. */
export function defaultChatUrl(loc: { protocol: string; host: string }): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/`;
}

/** Checks a WebSocket URL typed in the panel; returns the problem, or null when usable. */
export function chatUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'Not a URL.';
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return 'The URL must start with ws:// or wss://.';
  if (u.hash) return 'A WebSocket URL cannot have a #fragment.';
  return null;
}

// ---- the connection ----

export type ChatState = 'connecting' | 'open' | 'closed';

export interface CloseInfo {
  code: number;
  reason: string;
  wasClean: boolean;
  /** True when this side asked for the close (leave()). */
  byClient: boolean;
}

export interface ChatHandlers {
  onOpen?: () => void;
  onFrame?: (frame: Frame | InvalidFrame) => void;
  onClose?: (info: CloseInfo) => void;
}

/** The subset of the WebSocket constructor the client uses (a fake in tests). */
export type SocketFactory = (url: string, protocol: string) => WebSocket;

const defaultFactory: SocketFactory = (url, protocol) => new WebSocket(url, protocol);

/**
 * One chat connection. The token goes as the single sub-protocol, exactly as
 * the official SDKs send it; requests are refused locally only when the
 * socket is not open.
 */
export class ChatConnection {
  private readonly ws: WebSocket;
  private leaving = false;
  private closed = false;
  state: ChatState = 'connecting';

  constructor(url: string, token: string, private readonly handlers: ChatHandlers, factory: SocketFactory = defaultFactory) {
    this.ws = factory(url, token);
    this.ws.onopen = () => {
      this.state = 'open';
      this.handlers.onOpen?.();
    };
    this.ws.onmessage = (e: MessageEvent) => {
      if (typeof e.data !== 'string') {
        this.handlers.onFrame?.({ type: 'INVALID', raw: '(binary frame)', problem: 'binary frames are not part of the protocol' });
        return;
      }
      this.handlers.onFrame?.(parseFrame(e.data));
    };
    // error is always followed by close, which carries what can be known.
    this.ws.onerror = () => {};
    this.ws.onclose = (e: CloseEvent) => {
      if (this.closed) return;
      this.closed = true;
      this.state = 'closed';
      this.handlers.onClose?.({ code: e.code, reason: e.reason, wasClean: e.wasClean, byClient: this.leaving });
    };
  }

  /** Sends a request; returns its RequestId. Throws when the connection is not open. */
  send(req: UnsentRequest): string {
    if (this.state !== 'open') throw new Error('The chat connection is not open.');
    const RequestId = newRequestId();
    this.ws.send(JSON.stringify({ ...req, RequestId }));
    return RequestId;
  }

  sendMessage(content: string, attributes?: Record<string, string>): string {
    return this.send({ Action: 'SEND_MESSAGE', Content: content, ...(attributes && Object.keys(attributes).length ? { Attributes: attributes } : {}) });
  }

  deleteMessage(id: string, reason?: string): string {
    return this.send({ Action: 'DELETE_MESSAGE', Id: id, ...(reason ? { Reason: reason } : {}) });
  }

  disconnectUser(userId: string, reason?: string): string {
    return this.send({ Action: 'DISCONNECT_USER', UserId: userId, ...(reason ? { Reason: reason } : {}) });
  }

  /** Closes with 1000, as the official SDK's disconnect() does. */
  leave(): void {
    if (this.closed) return;
    this.leaving = true;
    this.ws.close(1000, 'left');
  }
}

/** Words for a close: "1000 disconnected by moderator". */
export function describeClose(info: CloseInfo): string {
  if (info.code === 1006) return 'the connection was lost or refused (1006)';
  return info.reason ? `${info.code} ${info.reason}` : String(info.code);
}
