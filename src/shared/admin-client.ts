// The other end of the admin interface (src/supervisor/admin.ts): one JSON request line,
// one JSON reply line. Used by the kv CLI, the benchmark and the tests.
//
// On the loopback listener a request is sent as is. On the listener at the
// daemon's host address (other machines reach it) the daemon first sends a
// challenge line, and every request line is "<mac> <json>", the mac being
// HMAC-SHA256 with the cluster secret over the challenge, the request's
// number on the connection and the JSON text: only holders of the secret are
// served, and a captured request cannot be replayed.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { connect } from 'node:net';

/** The mac of the `seq`-th request line on a connection whose challenge was `challenge`. */
export function adminMac(secret: Buffer, challenge: string, seq: number, json: string): string {
  return createHmac('sha256', secret).update(`kv-admin\0${challenge}\0${seq}\0${json}`).digest('hex');
}

export function adminMacMatches(secret: Buffer, challenge: string, seq: number, json: string, mac: string): boolean {
  const expected = Buffer.from(adminMac(secret, challenge, seq, json), 'hex');
  const given = Buffer.from(/^[0-9a-f]{64}$/.test(mac) ? mac : '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Sends one request and resolves with the reply. With `secret`, the
 * authenticated form (the daemon's host listener); without, the loopback form.
 */
export function adminRequest(port: number, req: object, host = '127.0.0.1', timeoutMs = 5000, secret?: Buffer): Promise<any> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    let buf = '';
    let challenge: string | undefined;
    const json = JSON.stringify(req);
    s.setEncoding('utf8');
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      reject(new Error(`admin port ${host}:${port} did not answer in ${timeoutMs} ms`));
    });
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: any;
        try {
          msg = JSON.parse(line);
        } catch {
          s.destroy();
          reject(new Error(`admin port ${host}:${port} answered with something that is not JSON`));
          return;
        }
        if (secret && challenge === undefined && typeof msg?.challenge === 'string') {
          challenge = msg.challenge as string;
          s.write(`${adminMac(secret, challenge, 0, json)} ${json}\n`);
          continue;
        }
        s.end();
        resolve(msg);
        return;
      }
    });
    s.on('error', (e) => reject(new Error(`admin port ${host}:${port}: ${e.message}`)));
    if (!secret) s.write(json + '\n');
  });
}
