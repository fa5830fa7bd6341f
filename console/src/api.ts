// The console's API client: the 17 operations of the IVS Chat control plane
// and ivschatd's extension operations (POST /ivschatd/<Op>), all signed with
// the signed-in key. Every failure is an ApiError.
import { sign, type Credentials } from './sigv4';
import { getCredentials } from './session';

export interface FieldError {
  name: string;
  message: string;
}

/**
 * An answer other than 2xx, or no answer at all (status 0, code
 * NetworkError). code is the short error type (ValidationException, ...).
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fieldList?: FieldError[];
  /** The whole JSON error body (resourceId, resourceType, limit, ...). */
  readonly body: Record<string, unknown>;

  constructor(status: number, code: string, message: string, fieldList?: FieldError[], body: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fieldList = fieldList;
    this.body = body;
  }
}

// ---- the model's shapes (spec: control-plane.md) ----

export type Capability = 'SEND_MESSAGE' | 'DISCONNECT_USER' | 'DELETE_MESSAGE';
export type FallbackResult = 'ALLOW' | 'DENY';
export type Tags = Record<string, string>;

export interface MessageReviewHandler {
  uri?: string;
  fallbackResult?: FallbackResult;
}

export interface Room {
  arn: string;
  id: string;
  name?: string;
  createTime: string;
  updateTime: string;
  maximumMessageRatePerSecond: number;
  maximumMessageLength: number;
  messageReviewHandler?: MessageReviewHandler;
  loggingConfigurationIdentifiers?: string[];
  tags?: Tags;
}

export interface RoomSummary {
  arn: string;
  id: string;
  name?: string;
  createTime: string;
  updateTime: string;
  messageReviewHandler?: MessageReviewHandler;
  loggingConfigurationIdentifiers?: string[];
  tags?: Tags;
}

export interface DestinationConfiguration {
  s3?: { bucketName: string };
  cloudWatchLogs?: { logGroupName: string };
  firehose?: { deliveryStreamName: string };
}

export type LoggingConfigurationState =
  | 'CREATING'
  | 'CREATE_FAILED'
  | 'DELETING'
  | 'DELETE_FAILED'
  | 'UPDATING'
  | 'UPDATE_FAILED'
  | 'ACTIVE';

export interface LoggingConfiguration {
  arn: string;
  id: string;
  name?: string;
  createTime: string;
  updateTime: string;
  destinationConfiguration: DestinationConfiguration;
  state: LoggingConfigurationState;
  tags?: Tags;
}

export interface RoomFields {
  name?: string;
  maximumMessageRatePerSecond?: number;
  maximumMessageLength?: number;
  messageReviewHandler?: MessageReviewHandler;
  loggingConfigurationIdentifiers?: string[];
}

/** Each operation's input and output. */
export interface Operations {
  CreateChatToken: {
    input: {
      roomIdentifier: string;
      userId: string;
      capabilities?: Capability[];
      sessionDurationInMinutes?: number;
      attributes?: Record<string, string>;
    };
    output: { token: string; tokenExpirationTime: string; sessionExpirationTime: string };
  };
  CreateLoggingConfiguration: {
    input: { name?: string; destinationConfiguration: DestinationConfiguration; tags?: Tags };
    output: LoggingConfiguration;
  };
  CreateRoom: { input: RoomFields & { tags?: Tags }; output: Room };
  DeleteLoggingConfiguration: { input: { identifier: string }; output: Record<string, never> };
  DeleteMessage: { input: { roomIdentifier: string; id: string; reason?: string }; output: { id: string } };
  DeleteRoom: { input: { identifier: string }; output: Record<string, never> };
  DisconnectUser: { input: { roomIdentifier: string; userId: string; reason?: string }; output: Record<string, never> };
  GetLoggingConfiguration: { input: { identifier: string }; output: LoggingConfiguration };
  GetRoom: { input: { identifier: string }; output: Room };
  ListLoggingConfigurations: {
    input: { maxResults?: number; nextToken?: string };
    output: { loggingConfigurations: LoggingConfiguration[]; nextToken?: string };
  };
  ListRooms: {
    input: {
      name?: string;
      messageReviewHandlerUri?: string;
      loggingConfigurationIdentifier?: string;
      maxResults?: number;
      nextToken?: string;
    };
    output: { rooms: RoomSummary[]; nextToken?: string };
  };
  ListTagsForResource: { input: { resourceArn: string }; output: { tags: Tags } };
  SendEvent: {
    input: { roomIdentifier: string; eventName: string; attributes?: Record<string, string> };
    output: { id: string };
  };
  TagResource: { input: { resourceArn: string; tags: Tags }; output: Record<string, never> };
  UntagResource: { input: { resourceArn: string; tagKeys: string[] }; output: Record<string, never> };
  UpdateLoggingConfiguration: {
    input: { identifier: string; name?: string; destinationConfiguration?: DestinationConfiguration };
    output: LoggingConfiguration;
  };
  UpdateRoom: { input: RoomFields & { identifier: string }; output: Room };
}

export type Operation = keyof Operations;

// ---- ivschatd's extension operations (notes: console-contract.md) ----

export interface RoomStats {
  arn: string;
  id: string;
  connections: number;
  users: number;
  messagesPerSecond: number;
  eventsPerSecond: number;
  rateWindowSeconds: number;
  errorsByCode: Record<string, number>;
  errorsWindowSeconds: number;
  nodes: number;
  nodesMissing: number;
  sampledAt: string;
}

export interface RoomConnection {
  userId: string;
  connectedAt: string;
  node: string;
  capabilities: Capability[];
  attributes?: Record<string, string>;
}

export interface ServerStatus {
  version: string;
  commit: string;
  node: string;
  startTime: string;
  uptimeSeconds: number;
  mode: 'single' | 'cluster';
  ready: boolean;
  checks: { name: string; ok: boolean; error?: string }[];
  totals: {
    connections: number;
    roomsWithConnections: number;
    deliveriesPerSecond: number;
    messagesPerSecond: number;
    eventsPerSecond?: number;
  };
  nodes: {
    node: string;
    version: string;
    startTime: string;
    connections: number;
    roomsWithConnections: number;
    deliveriesPerSecond: number;
    messagesPerSecond?: number;
    eventsPerSecond?: number;
  }[];
  nodesMissing: number;
  /** One row per destination and node (internal/chatlog's spool figures). */
  chatLog: {
    node: string;
    destination: string;
    type: string;
    spoolBytes: number;
    spooledRecords: number;
    deliveredRecords: number;
    droppedRecords: number;
    failedToSpoolRecords: number;
    failedAttempts: number;
  }[];
  sampledAt?: string;
}

/** A ban in force in a room (ListBans' entries; BanUser answers one with roomArn). */
export interface Ban {
  userId: string;
  /** Absent when the ban was made without one. */
  reason?: string;
  createdAt: string;
  /** Absent for a ban that lasts until UnbanUser. */
  expiresAt?: string;
}

export interface Extensions {
  GetRoomStats: { input: { identifier: string }; output: RoomStats };
  ListRoomConnections: {
    input: { identifier: string; maxResults?: number; nextToken?: string };
    output: { connections: RoomConnection[]; nextToken?: string };
  };
  GetServerStatus: { input: Record<string, never>; output: ServerStatus };
  BanUser: {
    input: { roomIdentifier: string; userId: string; durationInMinutes?: number; reason?: string };
    output: Ban & { roomArn: string };
  };
  UnbanUser: { input: { roomIdentifier: string; userId: string }; output: Record<string, never> };
  ListBans: {
    input: { roomIdentifier: string; maxResults?: number; nextToken?: string };
    output: { bans: Ban[]; nextToken?: string };
  };
}

export type Extension = keyof Extensions;

// ---- transport ----

/** Where the API is: the server that serves the console. */
function endpoint(): string {
  return location.origin;
}

const tagOperations: Record<string, string> = {
  ListTagsForResource: 'GET',
  TagResource: 'POST',
  UntagResource: 'DELETE',
};

/**
 * Calls a standard operation. creds defaults to the signed-in key (sign-in
 * passes the candidate key explicitly).
 */
export async function callApi<O extends Operation>(
  operation: O,
  input: Operations[O]['input'],
  creds?: Credentials,
): Promise<Operations[O]['output']> {
  const method = tagOperations[operation];
  if (method) {
    const { resourceArn, ...rest } = input as { resourceArn: string; tags?: Tags; tagKeys?: string[] };
    const url = new URL(`/tags/${encodeURIComponent(resourceArn)}`, endpoint());
    let body = '';
    if (operation === 'UntagResource') {
      for (const k of rest.tagKeys ?? []) url.searchParams.append('tagKeys', k);
    } else if (operation === 'TagResource') {
      body = JSON.stringify({ tags: rest.tags ?? {} });
    }
    return (await send(method, url, body, creds)) as Operations[O]['output'];
  }
  const url = new URL(`/${operation}`, endpoint());
  return (await send('POST', url, JSON.stringify(input ?? {}), creds)) as Operations[O]['output'];
}

/** Calls an ivschatd extension operation: POST /ivschatd/<Op>. */
export async function callExtension<E extends Extension>(
  operation: E,
  input: Extensions[E]['input'],
  creds?: Credentials,
): Promise<Extensions[E]['output']> {
  const url = new URL(`/ivschatd/${operation}`, endpoint());
  return (await send('POST', url, JSON.stringify(input ?? {}), creds)) as Extensions[E]['output'];
}

async function send(method: string, url: URL, body: string, creds?: Credentials): Promise<unknown> {
  const c = creds ?? getCredentials();
  if (!c) throw new ApiError(0, 'NotSignedIn', 'Sign in first.');
  const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {};
  const signed = sign({ method, url, headers, body }, c);
  let res: Response;
  try {
    res = await fetch(url, { method, headers: signed, body: body || undefined, cache: 'no-store', credentials: 'omit' });
  } catch (err) {
    throw new ApiError(0, 'NetworkError', `The server did not answer (${err instanceof Error ? err.message : String(err)}).`);
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  if (text) {
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      if (res.ok) throw new ApiError(res.status, 'InvalidResponse', 'The server answered with something that is not JSON.');
    }
  }
  if (res.ok) return json;
  throw errorFrom(res, json, text);
}

/** Builds the ApiError of a failed answer from x-amzn-errortype and the JSON body. */
export function errorFrom(res: Response, json: Record<string, unknown>, text: string): ApiError {
  // "ValidationException:http://internal.amazon.com/coral/..." in AWS's
  // own answers; ivschatd sends the bare name. The body's __type may be
  // namespaced ("com.amazonaws.ivschat#ValidationException").
  let code = (res.headers.get('x-amzn-errortype') ?? '').split(':')[0];
  if (!code && typeof json.__type === 'string') code = json.__type.split('#').pop() ?? '';
  if (!code) code = `HTTP${res.status}`;
  const message =
    typeof json.message === 'string' ? json.message : typeof json.Message === 'string' ? json.Message : text.trim() || res.statusText;
  const fieldList = Array.isArray(json.fieldList) ? (json.fieldList as FieldError[]) : undefined;
  return new ApiError(res.status, code, message, fieldList, json);
}
