// A test wrapper around the official amazon-ivs-chat-messaging ChatRoom: it
// records every event the room emits, so a test can wait (bounded) for one
// that may already have arrived.
import WebSocket from 'ws';
import { ChatRoom } from 'amazon-ivs-chat-messaging';

import { DEFAULT_WAIT_MS } from './util.mjs';

// The messaging client calls `new WebSocket(url, token)` on the global; Node 20
// has none without --experimental-websocket.
globalThis.WebSocket ??= WebSocket;

const EVENTS = ['connecting', 'connect', 'disconnect', 'message', 'event', 'messageDelete', 'userDisconnect'];

const quietLogger = {
  debug() {},
  info() {},
  error(...args) {
    if (process.env.IVSCHATD_TEST_DEBUG) console.error(...args);
  },
};

export class ChatClient {
  /**
   * @param {object} opts
   * @param {string} opts.url ws:// URL of the server
   * @param {import('@aws-sdk/client-ivschat').Ivschat} opts.cp control-plane client that mints tokens
   * @param {string} opts.roomArn
   * @param {string} opts.userId
   * @param {string[]} [opts.capabilities]
   * @param {Record<string,string>} [opts.attributes] token attributes (become Sender.Attributes)
   */
  constructor({ url, cp, roomArn, userId, capabilities = [], attributes }) {
    this.userId = userId;
    this.received = [];
    this.waiters = new Set();
    this.tokensIssued = 0;
    this.room = new ChatRoom({
      regionOrUrl: url,
      maxReconnectAttempts: 0,
      tokenProvider: async () => {
        this.tokensIssued++;
        const res = await cp.createChatToken({
          roomIdentifier: roomArn, userId, capabilities, attributes, sessionDurationInMinutes: 60,
        });
        return {
          token: res.token,
          sessionExpirationTime: res.sessionExpirationTime,
          tokenExpirationTime: res.tokenExpirationTime,
        };
      },
    });
    this.room.logger = quietLogger;
    this.room.logLevel = process.env.IVSCHATD_TEST_DEBUG ? 'debug' : 'error';
    for (const name of EVENTS) {
      this.room.addListener(name, (payload) => this.record(name, payload));
    }
  }

  record(name, payload) {
    this.received.push({ name, payload });
    for (const w of this.waiters) {
      if (w.name === name && w.match(payload)) w.resolve(payload);
    }
  }

  /** Resolves with the first `name` event (past or future) whose payload matches; rejects after `ms`. */
  waitFor(name, match = () => true, ms = DEFAULT_WAIT_MS) {
    const seen = this.received.find((e) => e.name === name && match(e.payload));
    if (seen) return Promise.resolve(seen.payload);
    return new Promise((resolve, reject) => {
      const w = { name, match };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        const got = this.received.map((e) => e.name).join(', ') || 'nothing';
        reject(new Error(`${this.userId}: no matching "${name}" event within ${ms} ms (received: ${got})`));
      }, ms);
      w.resolve = (payload) => {
        clearTimeout(timer);
        this.waiters.delete(w);
        resolve(payload);
      };
      this.waiters.add(w);
    });
  }

  /** Connects and waits for the `connect` event; fails fast if the room gives up instead. */
  async connect(ms = DEFAULT_WAIT_MS) {
    const connected = this.waitFor('connect', () => true, ms);
    const gaveUp = new Promise((_, reject) => {
      const off = this.room.addListener('disconnect', (reason) => {
        off();
        reject(new Error(`${this.userId}: could not connect (disconnect: ${reason})`));
      });
      connected.then(off, off); // also marks a late timeout as handled
    });
    this.room.connect();
    await Promise.race([connected, gaveUp]);
  }

  /** Disconnects if still connected (safe to call in cleanup). */
  close() {
    if (this.room.state !== 'disconnected') this.room.disconnect();
  }
}

// OpenClients remembers the clients a test file connects, so that one
// afterEach closes them all.
export class OpenClients {
  constructor() {
    this.list = [];
  }

  /** Connects a new ChatClient (the constructor's options) and remembers it. */
  async join(opts) {
    const c = new ChatClient(opts);
    this.list.push(c);
    await c.connect();
    return c;
  }

  closeAll() {
    for (const c of this.list) c.close();
    this.list = [];
  }
}
